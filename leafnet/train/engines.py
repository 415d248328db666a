"""How the trainer's epochs run: one interface, two engines.

- :class:`KerasEngine`: ``model.fit``, a *segment* of epochs per call over their datasets
  chained (``steps_per_epoch`` keeps one iterator), or one epoch at a time validated after
  ``fit`` (EMA: on the averaged weights).
- :class:`StepsEngine`: leafnet's own steps under a ``tf.distribute`` strategy that Keras
  3's ``fit`` cannot drive (multi-worker, :mod:`leafnet.train.steps`), one epoch at a time;
  the chief's run state and weights are broadcast to every worker.

Both call ``begin()`` before and ``end(logs)`` after each epoch; the trainer's bookkeeping
lives there, so an epoch computes the same whichever engine and wherever a call starts.
"""

from __future__ import annotations

from typing import Any, Callable

from leafnet.errors import LeafnetError
from leafnet.train.checkpoint import TrainState


def concatenate(datasets: list):
    """One dataset of ``datasets`` in turn, concatenated as a balanced tree (log depth)."""
    while len(datasets) > 1:
        datasets = [a.concatenate(b) for a, b in zip(datasets[::2], datasets[1::2])] + (
            [datasets[-1]] if len(datasets) % 2 else [])
    return datasets[0]


class KerasEngine:
    """Epochs through Keras' ``model.fit`` on one process (any single-process strategy)."""

    distributed = False
    best_at_once = False        # best.keras may wait (see leafnet.train.checkpoint.BestKeras)
    no_cache_reason: str | None = None

    def run_epochs(self, model, loss, train_sets: list, val_ds, *, first: int, steps: int, class_weight,
                   callbacks: Callable[[bool], list], begin: Callable[[], None], end: Callable[[dict], bool],
                   one_at_a_time: bool) -> None:
        """Train ``len(train_sets)`` epochs from run epoch ``first`` (one dataset each).

        Args:
            model, loss: the compiled model to train and its loss object.
            val_ds: the validation batches, or None (no validation).
            steps: batches per epoch.
            callbacks: ``callbacks(with_epochs)``: the Keras callbacks, with or without the
                one calling ``begin`` / ``end`` around each epoch.
            one_at_a_time: one epoch, validated after ``fit`` (``train_sets`` holds one).
        """
        if not one_at_a_time:
            k = len(train_sets)
            model.fit(concatenate(train_sets), initial_epoch=first, epochs=first + k,
                      steps_per_epoch=steps if k > 1 else None, verbose=0, shuffle=False, class_weight=class_weight,
                      validation_data=val_ds, callbacks=callbacks(True))
            return
        cbs = callbacks(False)
        begin()
        h = model.fit(train_sets[0], epochs=1, verbose=0, shuffle=False, class_weight=class_weight, callbacks=cbs)
        logs = {key: v[-1] for key, v in h.history.items()}
        val = {} if val_ds is None else model.evaluate(val_ds, verbose=0, return_dict=True)
        end({**logs, **{f"val_{key}": v for key, v in val.items()}})

    def share_state(self, state: TrainState | None) -> TrainState | None:
        """The state every process resumes from: this one's."""
        return state

    def share_variables(self, variables: list) -> None:
        """Give every process the chief's values of ``variables``: one process, nothing to do."""

    def check_replicas_agree(self, model) -> str | None:
        """One process: nothing to compare."""
        return None


class StepsEngine:
    """Epochs on leafnet's :class:`leafnet.train.steps.DistributedSteps`, one at a time.

    Args:
        steps: the steps (and their strategy).
        chief: this process writes the run folder and reads its backups.
    """

    distributed = True
    # best.keras at once: saving runs collectives, so every worker saves (the others into
    # their scratch folders) at the same epochs.
    best_at_once = True
    no_cache_reason = "not under --distribute multiworker (each worker would compute all features)"

    def __init__(self, steps, chief: bool):
        self.steps, self.chief = steps, chief

    @property
    def strategy(self):
        return self.steps.strategy

    def run_epochs(self, model, loss, train_sets: list, val_ds, *, first: int, steps: int, class_weight,
                   callbacks: Callable[[bool], list], begin: Callable[[], None], end: Callable[[dict], bool],
                   one_at_a_time: bool = True) -> None:
        """As :meth:`KerasEngine.run_epochs`; always one epoch at a time."""
        for train_ds in train_sets:
            cbs = callbacks(False)
            begin()
            logs = self.steps.train_epoch(model, loss, train_ds, class_weight=class_weight, callbacks=cbs)
            val = {} if val_ds is None else self.steps.evaluate(model, loss, val_ds)
            if end({**logs, **{f"val_{key}": v for key, v in val.items()}}):
                return

    def share_state(self, state: TrainState | None) -> TrainState | None:
        """The chief's state, on every worker (every worker resumes where the chief does)."""
        from leafnet.train.steps import broadcast_json

        shared = broadcast_json(self.strategy, state.to_dict() if state else None, is_chief=self.chief)
        return TrainState.from_dict(shared) if shared else None

    def share_variables(self, variables: list) -> None:
        """Assign the chief's values of ``variables`` on every worker."""
        from leafnet.train.steps import broadcast_variables

        broadcast_variables(self.strategy, variables, is_chief=self.chief)

    def check_replicas_agree(self, model) -> str | None:
        """Every worker must end with the chief's weights, bit for bit: they applied the same
        all-reduced gradients to the same values (a failed broadcast would show here).
        Returns the line that says so."""
        from leafnet.train.features import weights_fingerprint
        from leafnet.train.steps import agree, broadcast_json

        mine = weights_fingerprint(model)
        chiefs = broadcast_json(self.strategy, mine, is_chief=self.chief)
        if agree(self.strategy, mine != chiefs):
            raise LeafnetError("the workers of the cluster ended with different weights; the run is not trustworthy "
                               "(a worker restored another state?): delete the run folder and train again")
        return f"all {self.strategy.num_replicas_in_sync} replicas hold the same weights ({mine})"


def make_engine(steps: Any, chief: bool):
    """The engine for a trainer given ``steps`` (a DistributedSteps, or None for ``model.fit``)."""
    return KerasEngine() if steps is None else StepsEngine(steps, chief)
