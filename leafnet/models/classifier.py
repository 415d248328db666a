"""The classifier: augmentation -> backbone (with its preprocessing) -> head, one flat Keras model.

The model takes float32 RGB images of 0..255 and returns class probabilities. Its
layers are flat (the backbone's layers keep their own names), so freezing by block,
Grad-CAM on an inner layer and weight transfer all address layers by name; the names
of its parts are in :mod:`leafnet.models.parts`.
"""

from __future__ import annotations

import logging
import re
import socket

import keras
import numpy as np
from keras import layers

from leafnet.config import AugmentConfig, ModelConfig
from leafnet.data.augment import build_augmentation
from leafnet.errors import ConfigError, LeafnetError
from leafnet.models import hub
from leafnet.models.parts import (AUGMENTATION, HEAD_FLATTEN, HEAD_POOL, HEAD_PREFIX, HEAD_PREFIXES, INPUT,
                                  PREDICTIONS, backbone_layers, is_head)
from leafnet.models.registry import BackboneSpec, get_backbone

log = logging.getLogger("leafnet")

__all__ = ["AUGMENTATION", "HEAD_PREFIXES", "IMAGENET_TIMEOUT_S", "backbone_layers", "backbone_spec",
           "block_lr_multipliers", "build_classifier", "cut_spec", "is_head", "layer_blocks",
           "resolve_finetune_blocks", "set_trainable"]

IMAGENET_TIMEOUT_S = 20


def _activation(name: str):
    return "mish" if name == "mish" else name


def _build_backbone_output(spec: BackboneSpec, x, weights: str | None):
    """Run the spec's builder; turn an offline ImageNet download into one clear line."""
    if weights != "imagenet":
        return spec.builder(x, None)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(IMAGENET_TIMEOUT_S)
    try:
        return spec.builder(x, "imagenet")
    except Exception as e:  # keras.utils.get_file wraps URL errors in a bare Exception
        text = str(e)
        if "URL fetch failure" in text or isinstance(e, (OSError, socket.timeout)):
            raise LeafnetError(
                f"could not download ImageNet weights for {spec.name} (no internet?): {text.splitlines()[0][:160]}. "
                "They are downloaded once and cached in ~/.keras/models; offline, use --weights none "
                "or --weights PATH (a .keras / .weights.h5 file or a run folder)") from None
        raise
    finally:
        socket.setdefaulttimeout(old)


def build_classifier(spec: BackboneSpec, num_classes: int, image_size: int, model_cfg: ModelConfig,
                     augment_cfg: AugmentConfig | None = None, seed: int | None = None) -> keras.Model:
    """Build the full classifier.

    Args:
        spec: the backbone.
        num_classes: number of output classes (>= 2).
        image_size: square input size.
        model_cfg: head settings and weights (``imagenet`` is loaded here; a path is
            loaded afterwards by :func:`leafnet.models.weights.load_backbone_weights`).
        augment_cfg: augmentation settings; None for no augmentation layers.
        seed: base seed of the random layers.

    Returns:
        An uncompiled ``keras.Model`` named after the backbone.
    """
    if model_cfg.weights == "imagenet" and not spec.imagenet:
        raise ConfigError(f"{spec.name} has no ImageNet weights; use --weights none (train from scratch) "
                          "or --weights PATH")
    inputs = keras.Input((image_size, image_size, 3), name=INPUT)
    x = inputs
    if augment_cfg is not None:
        aug = build_augmentation(augment_cfg, seed=seed)
        if aug.layers:
            x = aug(x)
    weights = "imagenet" if model_cfg.weights == "imagenet" else None
    x = _build_backbone_output(spec, x, weights)
    if model_cfg.feature_layer:
        x = _mlp_head(_feature_output(spec, inputs, x, model_cfg.feature_layer), model_cfg, seed)
    else:
        pool = layers.GlobalMaxPooling2D if model_cfg.pooling == "max" else layers.GlobalAveragePooling2D
        x = pool(name=HEAD_POOL)(x)
        if model_cfg.head_batchnorm:
            # Momentum 0.9: the head often trains for a few hundred steps only (see simple-cnn).
            x = layers.BatchNormalization(momentum=0.9, name=HEAD_PREFIX + "bn")(x)
        if model_cfg.dense_units > 0:
            x = layers.Dense(model_cfg.dense_units, activation=_activation(model_cfg.activation),
                             name=HEAD_PREFIX + "dense")(x)
        if model_cfg.dropout > 0:
            x = layers.Dropout(model_cfg.dropout, seed=seed, name=HEAD_PREFIX + "dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name=PREDICTIONS)(x)
    return keras.Model(inputs, outputs, name=re.sub(r"[^A-Za-z0-9_]", "_", spec.name))


# ------------------------------------------------------------------ backbone resolution, feature cut

def backbone_spec(model_cfg: ModelConfig) -> BackboneSpec:
    """The backbone a model config asks for: the registry entry of ``backbone`` (or, with
    ``weights: hub:PRESET``, the keras-hub preset's), cut at ``feature_layer`` if set."""
    spec = hub.hub_spec(model_cfg.weights) if hub.is_hub(model_cfg.weights) else get_backbone(model_cfg.backbone)
    return cut_spec(spec, model_cfg.feature_layer) if model_cfg.feature_layer else spec


def cut_spec(spec: BackboneSpec, layer_name: str) -> BackboneSpec:
    """``spec`` with its block map ending at the block of ``layer_name``, so that
    ``--finetune-blocks N`` counts the blocks a feature-layer cut keeps.

    Raises:
        ConfigError: the layer matches no block of the backbone.
    """
    import dataclasses

    block = spec.block_of(layer_name)
    if block is None:
        raise ConfigError(f"model.feature_layer={layer_name!r} is in none of {spec.name}'s blocks "
                          f"({', '.join(spec.block_names)}); name a layer of one of them")
    keep = spec.block_names.index(block) + 1
    return dataclasses.replace(spec, blocks=spec.blocks[:keep],
                               family=f"{spec.family}, cut at {layer_name}".lstrip(", "))


def _feature_output(spec: BackboneSpec, inputs, x, layer_name: str):
    """The output of the backbone layer ``layer_name``; the layers after it are dropped."""
    full = keras.Model(inputs, x)
    names = [layer.name for layer in full.layers if not isinstance(layer, keras.layers.InputLayer)
             and layer.name != AUGMENTATION]
    if layer_name not in names:
        import difflib

        close = difflib.get_close_matches(layer_name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"model.feature_layer={layer_name!r}: {spec.name} has no such layer{hint}; "
                          f"its layers: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}")
    return full.get_layer(layer_name).output


def _mlp_head(x, model_cfg: ModelConfig, seed: int | None):
    """AlexNet's classifier on a fixed feature map: Flatten, then Dropout -> Dense per width."""
    from leafnet.config import mlp_units

    x = layers.Flatten(name=HEAD_FLATTEN)(x)
    for i, units in enumerate(mlp_units(model_cfg.mlp_units), start=1):
        if model_cfg.dropout > 0:
            x = layers.Dropout(model_cfg.dropout, seed=None if seed is None else seed + i,
                               name=f"{HEAD_PREFIX}dropout{i}")(x)
        x = layers.Dense(units, activation=_activation(model_cfg.activation), name=f"{HEAD_PREFIX}dense{i}")(x)
    return x


def layer_blocks(model: keras.Model, spec: BackboneSpec) -> dict[str, str | None]:
    """Map each backbone layer name to its block. Weightless glue layers that match no
    block (e.g. MobileNet's anonymous activations) inherit the block of the layer before."""
    blocks, current = {}, spec.block_names[0]
    for layer in backbone_layers(model, spec):
        block = spec.block_of(layer.name)
        if block is None and layer.weights:
            raise LeafnetError(f"layer {layer.name!r} of {spec.name} matches no block of the registry's block map")
        current = block or current
        blocks[layer.name] = current
    return blocks


def resolve_finetune_blocks(spec: BackboneSpec, blocks: int | str) -> list[str]:
    """The block names ``--finetune-blocks`` unfreezes (``all``: every block, the stem too).

    Raises:
        ConfigError: more blocks than the backbone has.
    """
    trainable = spec.trainable_blocks
    if blocks == "all":
        return spec.block_names
    n = int(blocks)
    if n > len(trainable):
        raise ConfigError(f"finetune.blocks={n} but {spec.name} has {len(trainable)} blocks "
                          f"({', '.join(trainable)}); use at most {len(trainable)} or 'all'")
    return trainable[len(trainable) - n:] if n else []


def set_trainable(model: keras.Model, spec: BackboneSpec, phase: str, blocks: int | str = 0,
                  from_scratch: bool = False) -> dict[str, int]:
    """Freeze the model for a phase. Call ``compile`` afterwards.

    Frozen blocks run in inference mode: BatchNormalization through ``trainable=False``,
    dropout layers (EfficientNet's stochastic depth) by a rate of 0 while frozen.

    * ``transfer``: the backbone is frozen (all of it, BatchNormalization included) and
      only the head trains; with ``from_scratch`` (random backbone weights) nothing is
      frozen, since a frozen random backbone would learn nothing.
    * ``finetune``: the last ``blocks`` blocks train, except their BatchNormalization
      layers, which stay frozen: in Keras 3 a BN layer with ``trainable=False`` runs in
      inference mode and keeps its moving statistics (passing ``training=False`` to the
      backbone is not enough, keras#20285).

    Returns:
        Trainable weight count per block (and ``head``), for logging and tests.
    """
    model.trainable = True
    blocks_of = layer_blocks(model, spec)
    unfrozen = set(spec.block_names) if (phase == "transfer" and from_scratch) else (
        set(resolve_finetune_blocks(spec, blocks)) if phase == "finetune" else set())
    for layer in backbone_layers(model, spec):
        train = blocks_of[layer.name] in unfrozen
        if isinstance(layer, layers.Dropout):
            # A frozen block runs in inference mode, its dropout (EfficientNet's stochastic
            # depth) included; trainable=False alone leaves dropout on in training steps.
            if not hasattr(layer, "_leafnet_rate"):
                layer._leafnet_rate = layer.rate
            layer.rate = layer._leafnet_rate if train else 0.0
        if phase == "finetune" and isinstance(layer, layers.BatchNormalization):
            train = False
        layer.trainable = train
    counts: dict[str, int] = {b: 0 for b in spec.block_names}
    counts["head"] = 0
    for layer in model.layers:
        n = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        if not n:
            continue
        counts["head" if is_head(layer) else blocks_of.get(layer.name, "head")] += n
    return counts


def block_lr_multipliers(model: keras.Model, spec: BackboneSpec, decay: float) -> dict[str, float]:
    """Discriminative learning rates: ``{variable path: factor}`` for the trainable backbone
    variables, ``decay ** k`` for the k-th block counted from the top (the last block has
    factor 1, like the head). fastai's ``slice(lo, hi)`` spreads lr geometrically the same
    way; timm calls it layer decay.
    """
    blocks_of = layer_blocks(model, spec)
    order = spec.block_names
    out: dict[str, float] = {}
    for layer in backbone_layers(model, spec):
        for v in layer.trainable_weights:
            k = len(order) - 1 - order.index(blocks_of[layer.name])
            out[v.path] = float(decay ** k)
    return out
