"""The backbone registry: the one place that turns a name into a backbone.

Each :class:`BackboneSpec` knows its builder, the preprocessing its weights expect
(inside the model, on 0..255 RGB input), its default image size and its block map:
an ordered list of ``(block, regex)`` over layer names, from the input to the output.
Freezing, fine-tuning and per-block explanations all go through the block map; no
other module switches on backbone names. The definitions (:mod:`leafnet.models.backbones`)
register themselves here; importing the package ``leafnet.models`` imports them, so this
module imports none of them.

Example:
    >>> spec = get_backbone("b4")
    >>> spec.name, spec.default_size
    ('efficientnet-b4', 380)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import keras

from leafnet.errors import ConfigError
from leafnet.models.parts import PREPROCESS_PREFIX

# A builder takes the input tensor (already augmented, values 0..255) and the weights
# argument for keras.applications ("imagenet" or None) and returns the headless
# backbone's output tensor; its layers become layers of the classifier.
Builder = Callable[[keras.KerasTensor, "str | None"], keras.KerasTensor]


@dataclass(frozen=True)
class BackboneSpec:
    """Everything leafnet knows about one backbone.

    Attributes:
        name: canonical name, e.g. ``efficientnet-b4``.
        builder: see :data:`Builder`.
        default_size: the input size its ImageNet weights were trained at.
        blocks: ``(block, regex)`` pairs in input-to-output order. The first is the
            stem, which is never counted by ``--finetune-blocks``; the last block also
            holds the layers after it (EfficientNet's ``top_*``), as ``--finetune-blocks 1``
            should unfreeze the last stage and what sits on it.
        aliases: other names accepted on the command line.
        imagenet: whether ``--weights imagenet`` exists for it.
        family: a short description for listings.
    """

    name: str
    builder: Builder
    default_size: int
    blocks: tuple[tuple[str, str], ...]
    aliases: tuple[str, ...] = ()
    imagenet: bool = True
    family: str = ""
    _compiled: tuple = field(default=(), compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_compiled", tuple((b, re.compile(rx)) for b, rx in self.blocks))

    @property
    def block_names(self) -> list[str]:
        """All blocks, stem first."""
        return [b for b, _ in self.blocks]

    @property
    def trainable_blocks(self) -> list[str]:
        """The blocks ``--finetune-blocks`` counts (all but the stem), input to output."""
        return self.block_names[1:]

    def block_of(self, layer_name: str) -> str | None:
        """The block a backbone layer belongs to, or None for layers outside the backbone."""
        for block, rx in self._compiled:
            if rx.match(layer_name):
                return block
        return None


_REGISTRY: dict[str, BackboneSpec] = {}
_ALIASES: dict[str, str] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add ``spec`` under its name and aliases (case-insensitive); a name taken by another is refused."""
    for key in (spec.name, *spec.aliases):
        key = key.lower()
        if key in _ALIASES and _ALIASES[key] != spec.name:
            raise ValueError(f"backbone name {key!r} is already registered for {_ALIASES[key]!r}")
        _ALIASES[key] = spec.name
    _REGISTRY[spec.name] = spec
    return spec


def list_backbones() -> list[BackboneSpec]:
    """Every registered backbone, in registration order."""
    return list(_REGISTRY.values())


def get_backbone(name: str) -> BackboneSpec:
    """Look a backbone up by name or alias (case-insensitive).

    Raises:
        ConfigError: unknown name, with the valid names.
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        import difflib

        close = difflib.get_close_matches(key, list(_ALIASES), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown backbone {name!r}{hint}; valid: {', '.join(_REGISTRY)}")
    return _REGISTRY[_ALIASES[key]]


# ------------------------------------------------------------------ keras-hub backbones
# A keras-hub preset (``--weights hub:PRESET``, built by leafnet.models.hub) is described by
# its Backbone class. Its stages are counted from the layer names of the built backbone, as
# a preset's depth varies (ResNet-18 vs -152, CSPDarkNet's 5 stages vs CSPResNet's 4).


@dataclass(frozen=True)
class HubFamily:
    """The block map of a keras-hub Backbone class, over its layer names.

    Attributes:
        hub_class: the keras-hub class name, e.g. ``EfficientNetBackbone``.
        name: leafnet's name for backbones of this family, e.g. ``hub-efficientnet``.
        stem: regex of the stem layers (leafnet's ``preprocess_`` layers are added to it).
        stage: regex with one group, the stage number, e.g. ``^block(\\d+)[a-z]_``.
        block: format of a block name from the stage number, e.g. ``block{}``.
        stage_extra: regex of extra layers of stage n (``{}`` is n), e.g. DenseNet's transitions.
        last_extra: regex of layers after the last stage that belong to it (``top_``).
        family: a short description for listings.
    """

    hub_class: str
    name: str
    stem: str
    stage: str
    block: str
    stage_extra: str = ""
    last_extra: str = ""
    family: str = ""

    def blocks_for(self, layer_names: list[str]) -> tuple[tuple[str, str], ...]:
        """``(block, regex)`` pairs for a backbone with these layer names."""
        rx = re.compile(self.stage)
        stages = sorted({int(m.group(1)) for n in layer_names if (m := rx.match(n))})
        if not stages:
            raise ConfigError(f"the keras-hub {self.hub_class} has no layer matching {self.stage!r}; "
                              "its layer names are not the ones leafnet's block map knows")
        blocks = [("stem", rf"^({PREPROCESS_PREFIX}|{self.stem})")]
        for i, n in enumerate(stages):
            parts = [self.stage.replace(r"(\d+)", str(n))]
            if self.stage_extra:
                parts.append(self.stage_extra.format(n))
            if i == len(stages) - 1 and self.last_extra:
                parts.append(self.last_extra)
            blocks.append((self.block.format(n), "(" + "|".join(parts) + ")"))
        return tuple(blocks)


_HUB: dict[str, HubFamily] = {}


def register_hub_family(family: HubFamily) -> HubFamily:
    """Add the block map of a keras-hub Backbone class."""
    _HUB[family.hub_class] = family
    return family


def list_hub_families() -> list[HubFamily]:
    """Every keras-hub Backbone class with a block map, in registration order."""
    return list(_HUB.values())


def hub_backbone_spec(hub_class: str, layer_names: list[str], builder: Builder, default_size: int,
                      preset: str = "") -> BackboneSpec:
    """The spec of a backbone built from a keras-hub preset of class ``hub_class``.

    Raises:
        ConfigError: a keras-hub class leafnet has no block map for.
    """
    family = _HUB.get(hub_class)
    if family is None:
        raise ConfigError(f"keras-hub backbone {hub_class} has no block map in leafnet; "
                          f"supported: {', '.join(sorted(_HUB))}")
    return BackboneSpec(name=family.name, builder=builder, default_size=default_size,
                        blocks=family.blocks_for(layer_names), imagenet=False,
                        family=f"{family.family} (keras-hub {preset})".strip())
