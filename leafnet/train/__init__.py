"""Training: recipe pieces from tensorflow-addons, as Keras 3 objects, and the two-phase
trainer.

    from leafnet.train import Ranger, Triangular2CyclicalLearningRate, SigmoidFocalCrossEntropy

Every class here is registered with Keras' serializer, so models compiled with them save
to ``.keras`` and reload with ``keras.saving.load_model`` (after ``import leafnet.train``).
"""

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

# tensorflow-addons' names, for code copied from tfa-era notebooks.
RectifiedAdam = RAdam

__all__ = [
    "RAdam", "RectifiedAdam", "Lookahead", "LayerwiseLR", "Ranger", "SigmoidFocalCrossEntropy",
    "TriangularCyclicalLearningRate", "Triangular2CyclicalLearningRate", "ExponentialCyclicalLearningRate",
    "WarmupCosineDecay", "OneCycle", "Constant",
]
