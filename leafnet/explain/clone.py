"""Copy a Keras model, weights matched by layer name."""

from __future__ import annotations


def clone_model(model, clone_function=None):
    """``keras.models.clone_model`` with the weights copied layer by layer (by name), so a
    replaced weightless layer does not shift the weight order."""
    import keras

    clone = keras.models.clone_model(model, clone_function=clone_function)
    for layer in clone.layers:
        try:
            src = model.get_layer(layer.name)
        except ValueError:
            continue
        if src.weights:
            layer.set_weights(src.get_weights())
    return clone
