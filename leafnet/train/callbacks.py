"""The Keras callbacks of the trainer's ``fit`` calls: epoch bookkeeping, the NaN guard and
the progress bar. They call only what they are given: no trainer internals."""

from __future__ import annotations

import math
from typing import Callable

from leafnet.console import progress_bar
from leafnet.errors import TrainingDiverged


def fit_callbacks(*, steps: int, bars: bool, label: Callable[[], str], phase: str,
                  begin: Callable[[], None] | None = None, end: Callable[[dict], bool] | None = None) -> list:
    """The callbacks of one ``fit`` call (or one epoch of leafnet's steps).

    Args:
        steps: batches per epoch (the progress bar's length).
        bars: show a progress bar within each epoch.
        label: the running epoch's name, for the NaN guard's message.
        phase: the phase's name, for the same message.
        begin, end: with both, called before and after every epoch (``end`` gets the
            epoch's logs and returns True to stop training).
    """
    import keras

    class Epochs(keras.callbacks.Callback):
        """Before each epoch ``begin()``; after it ``end(logs)``, which may stop training."""

        def on_epoch_begin(self, epoch, logs=None):
            begin()

        def on_epoch_end(self, epoch, logs=None):
            if end(logs or {}):
                self.model.stop_training = True

    class NaNGuard(keras.callbacks.Callback):
        """Stop within one batch when the loss is not finite, naming where it happened."""

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise TrainingDiverged(
                    f"training diverged: the loss became {float(loss)} at {label()}, batch "
                    f"{batch + 1} ({phase} phase); lower the learning rate. The run folder keeps the last "
                    "good epoch")

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.bar = progress_bar(steps, stateful_metrics=["loss", "accuracy"])

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(batch + 1, [(k, float(v)) for k, v in (logs or {}).items() if k in ("loss", "accuracy")])

    return ([Epochs()] if begin is not None and end is not None else []) + [NaNGuard()] + (
        [Progress()] if bars else [])
