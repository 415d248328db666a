"""The names of a classifier's parts, and the lookups by those names.

A leafnet classifier is one flat Keras model: the input ``image`` -> ``augmentation`` (a
Sequential of training-only layers, absent when nothing augments) -> the backbone's own
layers (leafnet's preprocessing layers named ``preprocess_*``) -> the ``head_*`` layers ->
``predictions``. Freezing, feature caching, export, weight transfer and explanations find
the parts through these names and helpers, never through literals of their own.
"""

from __future__ import annotations

from typing import Any

INPUT = "image"
AUGMENTATION = "augmentation"
PREPROCESS_PREFIX = "preprocess_"
HEAD_PREFIX = "head_"
HEAD_POOL = HEAD_PREFIX + "pool"
HEAD_FLATTEN = HEAD_PREFIX + "flatten"
PREDICTIONS = "predictions"
HEAD_PREFIXES = (HEAD_PREFIX, PREDICTIONS)


def is_head(layer: Any) -> bool:
    """Whether ``layer`` belongs to the head (``head_*`` or ``predictions``)."""
    return layer.name.startswith(HEAD_PREFIXES)


def head_layers(model: Any) -> list:
    """The head's layers of ``model``, in order."""
    return [layer for layer in model.layers if is_head(layer)]


def augmentation_of(model: Any) -> Any | None:
    """The model's augmentation block, or None when it has none."""
    try:
        return model.get_layer(AUGMENTATION)
    except ValueError:
        return None


def backbone_layers(model: Any, spec: Any = None) -> list:
    """The backbone's layers in ``model``, in order: all but the input, augmentation and head.

    Args:
        model: a leafnet classifier.
        spec: its :class:`~leafnet.models.registry.BackboneSpec`; the parts are told apart by
            name alone, so it may be omitted.
    """
    import keras

    return [layer for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and layer.name != AUGMENTATION and not is_head(layer)]
