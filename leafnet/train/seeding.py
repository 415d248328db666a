"""Seeds of a run's epochs: every random draw of an epoch is a function of (seed, epoch).

Nothing here runs at import time; the trainer reseeds before each epoch, the feature
cache before each augmented copy.
"""

from __future__ import annotations

import random

import numpy as np


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 31-bit seed derived from (seed, epoch, stream)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0] & 0x7FFFFFFF)


def reseed(model, seed: int, epoch: int) -> None:
    """Make every random draw of epoch ``epoch`` a function of (seed, epoch) only.

    The state of each ``SeedGenerator`` of the model (Dropout, the augmentation layers) is
    overwritten: Keras keeps those states as variables that advance with every batch and
    that ``BackupAndRestore`` forgets. Python's and NumPy's global seeds are set too.
    TensorFlow's global seed is not: ``tf.random.set_seed`` clears TensorFlow's kernel
    cache (a cost every epoch), and no op of an epoch reads it (Keras draws from the seed
    generators; leafnet's datasets take explicit seeds). It is set once, from
    ``run.seed``, before the model is built.
    """
    random.seed(epoch_seed(seed, epoch))
    np.random.seed(epoch_seed(seed, epoch))
    i = 0
    for v in model.variables:
        if v.name == "seed_generator_state" or v.path.endswith("seed_generator_state"):
            v.assign(np.array([epoch_seed(seed, epoch, i + 1), 0], dtype=v.dtype))
            i += 1
