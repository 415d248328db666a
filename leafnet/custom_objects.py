"""Every Keras object leafnet registers (package ``leafnet``), in one list: ``KERAS_OBJECTS``.

Importing this module registers them all with Keras' serializer, so
``keras.saving.load_model`` can rebuild leafnet models (in safe mode).
"""

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

# Each is saved as ``leafnet>ClassName``; a new registered class belongs here.
KERAS_OBJECTS = (
    RandomCropResize, RandomNoise,
    SigmoidFocalCrossEntropy,
    RAdam, Lookahead, LayerwiseLR, Ranger,
    TriangularCyclicalLearningRate, Triangular2CyclicalLearningRate, ExponentialCyclicalLearningRate,
    WarmupCosineDecay, OneCycle, Constant,
)

# tensorflow-addons' name, for code copied from tfa-era notebooks.
RectifiedAdam = RAdam

__all__ = ["RandomCropResize", "RandomNoise", "RAdam", "RectifiedAdam", "Lookahead", "LayerwiseLR", "Ranger",
           "SigmoidFocalCrossEntropy", "TriangularCyclicalLearningRate", "Triangular2CyclicalLearningRate",
           "ExponentialCyclicalLearningRate", "WarmupCosineDecay", "OneCycle", "Constant"]
