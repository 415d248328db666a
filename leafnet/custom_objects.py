"""Importing this module registers every leafnet Keras object with Keras' serializer,
so ``keras.saving.load_model`` can rebuild leafnet models (in safe mode)."""

from leafnet.data.augment import RandomCropResize, RandomNoise
from leafnet.train import *  # noqa: F401,F403  (optimizers, schedules, losses)
from leafnet.train import __all__ as _train_objects

__all__ = ["RandomCropResize", "RandomNoise", *_train_objects]
