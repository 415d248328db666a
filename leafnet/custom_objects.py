"""Importing this module registers every leafnet Keras object with Keras' serializer,
so ``keras.saving.load_model`` can rebuild leafnet models (in safe mode)."""

from leafnet.data.augment import RandomCropResize, RandomNoise
from leafnet.train.losses import SigmoidFocalCrossEntropy
from leafnet.train.optimizers import LayerwiseLR, Lookahead, RAdam, Ranger
from leafnet.train.schedules import (
    Constant,
    ExponentialCyclicalLearningRate,
    OneCycle,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
    WarmupCosineDecay,
)

__all__ = [
    "RandomCropResize", "RandomNoise", "SigmoidFocalCrossEntropy", "LayerwiseLR", "Lookahead", "RAdam", "Ranger",
    "Constant", "ExponentialCyclicalLearningRate", "OneCycle", "Triangular2CyclicalLearningRate",
    "TriangularCyclicalLearningRate", "WarmupCosineDecay",
]
