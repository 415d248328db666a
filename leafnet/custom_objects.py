"""Importing this module registers every leafnet Keras object with Keras' serializer,
so ``keras.saving.load_model`` can rebuild leafnet models (in safe mode)."""

from leafnet.data.augment import RandomCropResize, RandomNoise  # noqa: F401

__all__ = ["RandomCropResize", "RandomNoise"]
