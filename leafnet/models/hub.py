"""Backbones from keras-hub presets: ``--weights hub:PRESET``.

KerasHub loads its own presets (``efficientnet_b0_ra_imagenet``), local preset folders
(``Backbone.save_to_preset``) and timm checkpoints on the Hugging Face Hub
(``hf://timm/tf_efficientnet_b4.ns_jft_in1k``, the Noisy-Student weights that
keras.applications does not ship) through its timm converter; downloading and caching
are the library's own. leafnet re-applies the preset's layers to its own input, so the
classifier stays one flat graph: the block map (in the registry, per keras-hub class)
drives freezing and fine-tuning exactly as for the built-in backbones.

keras-hub is an optional extra: ``pip install leafnet[hub]``.

Example:
    >>> leafnet.fit({"data": {"data": "leaves/"},
    ...              "model": {"weights": "hub:hf://timm/tf_efficientnet_b4.ns_jft_in1k"}})
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from leafnet.errors import LeafnetError
from leafnet.models.parts import PREPROCESS_PREFIX, backbone_layers
from leafnet.models.registry import hub_backbone_spec

PREFIX = "hub:"
DEFAULT_SIZE = 224


def is_hub(weights: str | None) -> bool:
    """Whether ``model.weights`` names a keras-hub preset."""
    return isinstance(weights, str) and weights.startswith(PREFIX)


def preset_of(weights: str) -> str:
    preset = weights[len(PREFIX):].strip()
    if not preset:
        raise LeafnetError("--weights hub: needs a preset, e.g. hub:hf://timm/tf_efficientnet_b4.ns_jft_in1k, "
                           "a KerasHub preset name, or a local preset folder")
    return preset


def canonical(weights: str) -> str:
    """``hub:PRESET`` with a local preset folder made absolute (so a stored config reproduces)."""
    preset = preset_of(weights)
    if "://" not in preset and Path(preset).expanduser().is_dir():
        return PREFIX + str(Path(preset).expanduser().resolve())
    return PREFIX + preset


def keras_hub() -> Any:
    """The keras_hub module, or a one-line error naming the extra."""
    try:
        import keras_hub as kh
    except ImportError:
        raise LeafnetError("--weights hub:... needs keras-hub, which is not installed: "
                           "pip install leafnet[hub]") from None
    return kh


def _hub_error(preset: str, e: Exception) -> LeafnetError:
    text = str(e).strip().splitlines()[0][:240] if str(e).strip() else type(e).__name__
    hint = ""
    if "://" in preset or not Path(preset).expanduser().exists():
        # keras-hub reports a failed download as a missing config.json
        hint = (" (a remote preset is downloaded by keras-hub on first use and cached; offline, "
                "use a local preset folder: hub:PATH)")
    return LeafnetError(f"--weights hub:{preset}: keras-hub cannot load this preset: {text}{hint}")


def _loader(preset: str):
    kh = keras_hub()
    from keras_hub.src.utils.preset_utils import get_preset_loader

    if "://" not in preset and os.path.sep in preset and not Path(preset).is_dir():
        raise LeafnetError(f"--weights hub:{preset}: no such preset folder")
    try:
        loader = get_preset_loader(preset)
        cls = loader.check_backbone_class()
    except Exception as e:  # keras-hub raises ValueError/OSError/HTTP errors alike
        raise _hub_error(preset, e) from None
    return kh, loader, cls


def _preprocessing(kh, preset: str) -> tuple[Any, Any, int | None]:
    """``(scale, offset, image size)`` of the preset's image converter, or 0..1 scaling."""
    try:
        converter = kh.layers.ImageConverter.from_preset(preset)
    except Exception:  # a preset without an image converter (a bare backbone)
        converter = None
    if converter is None:
        return 1.0 / 255.0, 0.0, None
    size = getattr(converter, "image_size", None)
    scale = converter.scale if converter.scale is not None else 1.0
    offset = converter.offset if converter.offset is not None else 0.0
    return scale, offset, (int(size[0]) if size else None)


def load_hub_backbone(preset: str, load_weights: bool = True):
    """The keras-hub Backbone of ``preset`` (weights loaded by keras-hub)."""
    kh, loader, cls = _loader(preset)
    try:
        return loader.load_backbone(cls, load_weights)
    except Exception as e:
        raise _hub_error(preset, e) from None


def build_hub_backbone(preset: str, x):
    """Apply the preset's preprocessing and backbone layers to ``x`` (0..255 RGB); the
    layers become layers of the caller's model (one flat graph), weights loaded."""
    from keras import layers

    kh = keras_hub()
    backbone = load_hub_backbone(preset)
    scale, offset, _ = _preprocessing(kh, preset)
    x = layers.Rescaling(scale, offset, name=PREPROCESS_PREFIX + "hub")(x)
    # Functional._run_through_graph applies each operation to new inputs; calling the
    # backbone itself would nest it as one layer and hide its blocks.
    out = backbone._run_through_graph([x], operation_fn=lambda op: op)
    return out[0] if isinstance(out, (list, tuple)) else out


def hub_spec(weights: str):
    """The :class:`~leafnet.models.registry.BackboneSpec` of ``hub:PRESET``: the block map of
    its keras-hub class (from the registry), counted on the preset's architecture."""
    preset = preset_of(weights)
    kh, loader, cls = _loader(preset)
    try:
        skeleton = loader.load_backbone(cls, False)
    except Exception as e:
        raise _hub_error(preset, e) from None
    names = [layer.name for layer in skeleton.layers]
    _, _, size = _preprocessing(kh, preset)

    def builder(x, _weights):
        return build_hub_backbone(preset, x)

    return hub_backbone_spec(cls.__name__, names, builder, size or DEFAULT_SIZE, preset=preset)


def weighted_layers(model, spec) -> int:
    """How many backbone layers with weights a hub-built classifier has (all loaded by keras-hub)."""
    return sum(1 for layer in backbone_layers(model, spec) if layer.weights)
