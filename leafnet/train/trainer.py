"""The two-phase trainer: transfer (frozen backbone), then fine-tune (last blocks unfrozen).

The trainer owns the epochs, and everything an epoch depends on is a function of the
seed and the epoch number: its shuffle order and mixing draws (each epoch has its own
dataset), the state of every random layer (dropout, augmentation) and the global seeds,
reset from ``(seed, epoch)`` before it starts (:mod:`leafnet.train.seeding`). An engine
(:mod:`leafnet.train.engines`) runs the epochs: Keras' ``model.fit``, as many epochs per
call as the recipe allows (:mod:`leafnet.train.phases`), or leafnet's own steps under
``--distribute multiworker``. After each epoch the trainer's :meth:`Trainer.on_epoch_end`
records it, asks the trackers (:mod:`leafnet.train.trackers`: best, early stopping,
plateau) and writes the weights and the optimizer state atomically to ``backup/``, then
commits a small ``state.json`` (:mod:`leafnet.train.checkpoint`); a run killed at any
moment (SIGKILL included) and started again with the same command continues from the last
finished epoch (or the one before, when the newest backup is unreadable) and ends with
the same weights as an uninterrupted run.

In a multi-worker cluster only the chief (worker 0) writes backups and reads them: when
the cluster restarts, the chief's state and weights are broadcast to the other workers,
which hold no state of their own.

Subclasses change what an epoch trains on by overriding the public hooks
:meth:`Trainer.train_dataset`, :meth:`Trainer.on_epoch_begin` and :meth:`Trainer.on_epoch_end`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leafnet.config import Config
from leafnet.errors import TrainingDiverged
from leafnet.runs import RunDir, io_guard
from leafnet.train.callbacks import fit_callbacks
from leafnet.train.checkpoint import (
    BEST_EVERY_SECONDS,
    BestKeras,
    Checkpoints,
    TrainState,
    backup_name,
    finite_weights,
    history_row,
    model_arrays,
)
from leafnet.train.engines import make_engine
from leafnet.train.epoch_log import EpochLog, epoch_label, mixing_summary
from leafnet.train.phases import (
    Phase,
    mixing,
    one_at_a_time,
    phase_start,
    plan_phases,
    segment_epochs,
    stage_blocks,
)
from leafnet.train.seeding import epoch_seed, reseed
from leafnet.train.trackers import Best, EarlyStopping, ReduceLROnPlateau

__all__ = ["Trainer", "Phase", "plan_phases", "epoch_seed", "reseed", "mixing_summary", "BEST_EVERY_SECONDS"]


@dataclass
class Trainer:
    """Runs the phases of one run folder; see the module docstring.

    Args:
        cfg: the resolved config.
        run: the run folder (created, with its data files written).
        spec: the backbone.
        model: the built classifier (weights loaded).
        train, val: :class:`leafnet.data.pipeline.ImageSet` s, cached (``val`` None: no validation).
        class_weight: optional ``{label: weight}``.
        from_scratch: the backbone has random weights (the transfer phase trains it whole).
        steps: a :class:`leafnet.train.steps.DistributedSteps` to train with instead of
            ``model.fit`` (multi-worker training), else None.
        chief: this process writes the run folder (False on the other workers of a cluster).
    """

    cfg: Config
    run: RunDir
    spec: Any
    model: Any
    train: Any
    val: Any
    class_weight: dict[int, float] | None = None
    from_scratch: bool = False
    steps: Any = None
    chief: bool = True
    history: list[dict] = field(default_factory=list)
    _stage: Any = field(default=None, init=False)
    _features: Any = field(default=None, init=False)   # (train, val) FeatureCache of the phase, when it caches
    _loss: Any = field(default=None, init=False)
    _epoch: dict = field(default_factory=dict, init=False)    # the running epoch: label, lr, start time
    _committed: TrainState | None = field(default=None, init=False)   # a copy of the last committed state
    _trackers: dict = field(default_factory=dict, init=False)        # the phase's Best, EarlyStopping, ...

    def __post_init__(self):
        self.engine = make_engine(self.steps, self.chief)
        self.log = EpochLog(self.cfg.run.verbose)
        self.checkpoints = Checkpoints(self.run) if self.run is not None else None
        # BEST_EVERY_SECONDS is read here, at run time, so a test can change it on this module.
        self.best_keras = BestKeras(self.checkpoints, BEST_EVERY_SECONDS) if self.run is not None else None

    # -- the run
    def load_state(self) -> TrainState | None:
        """The state to resume from (see :meth:`leafnet.train.checkpoint.Checkpoints.resume`)."""
        return self.checkpoints.resume()

    def fit(self) -> list[dict]:
        """Train every phase, resuming from ``backup/`` when it holds a state; returns the history rows."""
        phases = plan_phases(self.cfg)
        state = self.engine.share_state(self.load_state() if self.chief else None) or TrainState()
        self._committed = state.copy()
        if state.epochs and self.chief:
            self.history = [dict(r) for r in state.history or []]
            self.log.say(f"resuming {self.run.root} after epoch {state.epochs} "
                         f"({phases[min(state.phase_index, len(phases) - 1)].name} phase)")
        try:
            ran = self._run_phases(phases, state)
        except BaseException:
            # Stopped between phase ends (an error, Ctrl-C): best.keras still gets the best epoch.
            with contextlib.suppress(Exception):
                self._save_pending_best()
            raise
        if not ran:
            # Killed after the last epoch was committed but before the run was finished:
            # nothing to train, but the model must hold the final weights and be compiled
            # for the final evaluation.
            self._compile_final(phases[-1])
            self._restore(state.weights, with_optimizer=False)
        self._save_pending_best()
        agreed = self.engine.check_replicas_agree(self.model)
        if agreed:
            self.log.say(agreed)
        state.complete = True
        self._write(lambda: self._commit(state), f"the run state in {self.run.backup}")
        return self.history

    def compile_final(self, model) -> None:
        """Freeze and compile ``model`` (a copy of the trained one) as the run ended."""
        self._compile_final(plan_phases(self.cfg)[-1], model)

    def _run_phases(self, phases: list[Phase], state: TrainState) -> bool:
        """Train the phases from ``state`` on; False if there was nothing left to train."""
        ran = False
        for pi, phase in enumerate(phases):
            start = phase_start(pi, phase, state, self.cfg.finetune.blocks, self._block_count())
            if start is None:
                continue
            ran = True
            counts = self._prepare_phase(phase, self.stage_blocks(phase, start.phase_epoch))
            if start.resumed:
                self._restore(state.weights, with_optimizer=start.with_optimizer)
            else:
                if start.restore_previous:
                    self._restore(state.weights, with_optimizer=False)
                state.phase_index, state.phase_epochs, state.phase_done = pi, 0, False
            self._start_trackers(phase, state, resumed=start.resumed)
            if not start.resumed:
                self.log.phase(phase.name, phase.cfg, counts, self.cfg.augment)
            self._run_phase(phase, state)
        return ran

    def _run_phase(self, phase: Phase, state: TrainState) -> None:
        """Train the phase to its end, a segment of epochs per engine call (see
        :func:`leafnet.train.phases.segment_epochs`)."""
        bs = self.cfg.data.batch_size
        while not state.phase_done:
            stage = self.stage_blocks(phase, state.phase_epochs)
            if stage != self._stage:
                counts = self._prepare_phase(phase, stage)
                self.log.say(f"  gradual unfreezing: {stage} block(s) now train "
                             f"({sum(counts.values()):,} trainable weights); optimizer restarted")
            cached = self._features is not None
            fit_model = self._features[0].head_part if cached else self.model
            val_set = self._features[1] if cached else self.val
            val_ds = None if val_set is None else val_set.dataset(bs)
            steps = self._steps_per_epoch()
            k = segment_epochs(phase, state.phase_epochs, self.cfg.finetune.blocks, self._block_count(),
                               self.cfg.augment, self.engine.distributed)
            n0, k0 = state.epochs, state.phase_epochs

            def begin():
                self.on_epoch_begin(phase, state)

            def end(logs):
                return self.on_epoch_end(phase, state, logs)

            def callbacks(with_epochs: bool) -> list:
                return fit_callbacks(steps=steps, bars=self.log.bars, label=lambda: self.epoch_label,
                                     phase=phase.name, begin=begin if with_epochs else None,
                                     end=end if with_epochs else None)

            self.engine.run_epochs(fit_model, self._loss, [self.train_dataset(phase, k0 + i, n0 + i) for i in range(k)],
                                   val_ds, first=n0, steps=steps, class_weight=self.class_weight, callbacks=callbacks,
                                   begin=begin, end=end, one_at_a_time=one_at_a_time(phase, self.engine.distributed))

    # -- public hooks
    def train_dataset(self, phase: Phase, phase_epoch: int, epoch: int):
        """The batches of run epoch ``epoch`` (from 0; phase epoch ``phase_epoch``): a
        function of the seed and the epoch only."""
        from leafnet.data.augment import mix_batches

        cfg = self.cfg
        if self._features is not None:
            return self._features[0].dataset(cfg.data.batch_size, self._train_order(epoch), epoch=epoch)
        ds = self.train.dataset(cfg.data.batch_size, self._train_order(epoch))
        if mixing(cfg.augment, phase, phase_epoch):
            a = cfg.augment
            ds = mix_batches(ds, mixup=a.mixup, cutmix=a.cutmix, seed=epoch_seed(cfg.run.seed, epoch, 7))
        return ds

    def on_epoch_begin(self, phase: Phase, state: TrainState) -> None:
        """Before epoch ``state.epochs + 1``: name it, reseed every random draw from (seed,
        epoch), note the learning rate and the time."""
        import keras

        n = state.epochs
        label = epoch_label(n + 1, phase.name, state.phase_epochs + 1, phase.cfg.epochs)
        self.log.epoch_start(label)
        reseed(self.model, self.cfg.run.seed, n)
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self._epoch = {"label": label, "lr": lr, "t0": time.perf_counter()}

    def on_epoch_end(self, phase: Phase, state: TrainState, logs: dict) -> bool:
        """After an epoch: record it, keep the phase's and the run's best, lower the lr on a
        plateau, back up weights and optimizer, commit the state. Returns True to stop the
        phase early."""
        p, monitor = phase.cfg, phase.cfg.monitor
        label, lr = self._epoch["label"], self._epoch["lr"]
        seconds = time.perf_counter() - self._epoch["t0"]
        logs = {key: float(v) for key, v in logs.items()}
        n = state.epochs
        if not all(math.isfinite(logs.get(key, 0.0)) for key in ("loss", "val_loss")):
            raise TrainingDiverged(f"training diverged at {label}: loss {logs.get('loss')}, "
                                   f"val_loss {logs.get('val_loss')}; lower the learning rate. "
                                   "The run folder keeps the last good epoch")
        row = history_row(phase.name, n + 1, state.phase_epochs + 1, lr, logs, seconds)
        arrays = model_arrays(self.model, True)
        if not finite_weights(arrays):
            raise TrainingDiverged(f"training diverged at {label}: the weights are no longer finite; "
                                   "lower the learning rate. The run folder keeps the last good epoch")
        self.history.append(row)
        self.log.epoch_end(label, row)
        value = logs.get(monitor)   # None without validation: no best, plateau or early stop
        state.epochs, state.phase_epochs = n + 1, state.phase_epochs + 1
        name = backup_name(n + 1)
        t = self._trackers
        stop = False
        if value is not None:
            # The phase's best weights are this epoch's backup (its optimizer part is not read).
            better = t["phase_best"].update(value, n + 1, name)
            stop = t["early"].update(better)
            new_lr = t["plateau"].update(better, lr)
            if t["best"].update(value, n + 1, name):
                state.best_saved = False
                if self.engine.best_at_once or self.best_keras.due():
                    self.best_keras.save(self.model, state)
            if new_lr is not None:
                self.model.optimizer.learning_rate = new_lr
                self.log.say(f"  no improvement of {monitor} for {t['plateau'].waited} epochs: lr {lr:g} -> {new_lr:g}")
            self._sync_trackers(state)
        last = stop or state.phase_epochs >= p.epochs
        if last and state.phase_best_weights and state.phase_best_epoch != n + 1:
            # End of phase: go back to the phase's best epoch (EarlyStopping's restore_best_weights).
            self._restore(state.phase_best_weights, with_optimizer=False)
            self.log.say(f"  restored the weights of epoch {state.phase_best_epoch} "
                         f"(best {monitor} {state.phase_best:.4f})")
            arrays = model_arrays(self.model, True)
        state.weights = name
        self._write(lambda: self.checkpoints.save_backup(name, arrays), "a backup")
        if last and state.best_weights == state.phase_best_weights:
            self.best_keras.save(self.model, state)       # the model holds the run's best weights now
        state.phase_done = last
        self._write(lambda: self._commit(state), f"the run state in {self.run.backup}")
        if stop:
            self.log.say(f"  early stopping: no improvement of {monitor} for {state.wait} epochs")
        return stop

    @property
    def epoch_label(self) -> str:
        """The running epoch's name, e.g. ``epoch 3 (transfer 3/5)``."""
        return self._epoch.get("label", "")

    def stage_blocks(self, phase: Phase, phase_epoch: int) -> int | str:
        """Blocks unfrozen at a phase epoch (see :func:`leafnet.train.phases.stage_blocks`)."""
        return stage_blocks(phase, phase_epoch, self.cfg.finetune.blocks, self._block_count())

    _stage_blocks = stage_blocks      # the older name, still called by tests/train/test_recipe.py

    # -- phases
    def _block_count(self) -> int:
        return len(self.spec.block_names) if self.cfg.finetune.blocks == "all" else 0

    def _start_trackers(self, phase: Phase, state: TrainState, resumed: bool) -> None:
        """The phase's trackers, from ``state`` when the phase resumes, else fresh (the run's
        best carries over unless the monitored metric changed)."""
        p = phase.cfg
        self._trackers = {
            "phase_best": Best(p.monitor, prefix="phase_", stored=("value", "epoch", "weights")),
            "best": Best(p.monitor, stored=("value", "weights", "monitor")),
            "early": EarlyStopping(p.early_stopping),
            "plateau": ReduceLROnPlateau(p.reduce_lr_patience, p.reduce_lr_factor, p.min_lr),
        }
        for key, tracker in self._trackers.items():
            if resumed or key == "best":
                tracker.set_state(vars(state))
        self._sync_trackers(state)

    def _sync_trackers(self, state: TrainState) -> None:
        for tracker in self._trackers.values():
            state.update(tracker.get_state())

    def _prepare_phase(self, phase: Phase, blocks: int | str) -> dict[str, int]:
        """Freeze for the phase and compile a fresh optimizer, loss and schedule."""
        import keras

        from leafnet.models.classifier import block_lr_multipliers, set_trainable
        from leafnet.train.optim import make_loss, make_optimizer, make_schedule

        counts = set_trainable(self.model, self.spec, phase.name, blocks=blocks, from_scratch=self.from_scratch)
        optimizer = make_optimizer(phase.cfg, make_schedule(phase.cfg, self._steps_per_epoch()), ema=phase.cfg.use_ema)
        if phase.name == "finetune" and phase.cfg.lr_decay != 1.0:
            from leafnet.train.optimizers import LayerwiseLR

            optimizer = LayerwiseLR(optimizer, block_lr_multipliers(self.model, self.spec, phase.cfg.lr_decay))
        loss = self._loss = make_loss(phase.cfg)
        self.model.compile(optimizer=optimizer, loss=loss, metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                           jit_compile=self.cfg.run.jit_compile)
        self.model.optimizer.build(self.model.trainable_variables)
        self._stage = blocks
        self._features = None
        if self.engine.no_cache_reason is None:
            from leafnet.train.features import phase_feature_caches

            self._features = phase_feature_caches(self.cfg, phase.name, self.model, self.train, self.val,
                                                  cache_dir=self.run.cache, from_scratch=self.from_scratch,
                                                  say=self.log.say)
        elif self.cfg.data.cache_features == "on" and phase.name == "transfer":
            self.log.say(f"  no feature cache: {self.engine.no_cache_reason}")
        if self._features is not None:
            # The head part shares the model's head layers, and now its optimizer too.
            self._features[0].head_part.compile(optimizer=self.model.optimizer, loss=loss,
                                                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                                                jit_compile=self.cfg.run.jit_compile)
        return counts

    def _compile_final(self, phase: Phase, model=None) -> None:
        import keras

        from leafnet.models.classifier import set_trainable
        from leafnet.train.optim import make_loss

        model = self.model if model is None else model
        set_trainable(model, self.spec, phase.name, blocks=self.cfg.finetune.blocks, from_scratch=self.from_scratch)
        model.compile(loss=make_loss(phase.cfg), metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])

    def _steps_per_epoch(self) -> int:
        return -(-len(self._train_order(0)) // self.cfg.data.batch_size)

    def _train_order(self, epoch: int) -> np.ndarray:
        from leafnet.data.pipeline import balanced_order, epoch_order

        if self.cfg.data.balance == "oversample":
            return balanced_order(self.train.labels, self.cfg.run.seed, epoch)
        return epoch_order(len(self.train), self.cfg.run.seed, epoch)

    # -- persistence
    def _write(self, fn, what: str) -> None:
        """Write through :func:`io_guard`; only the chief writes."""
        if self.chief:
            io_guard(fn, what)

    def _restore(self, name: str, with_optimizer: bool) -> None:
        """Load backup ``name`` into the model (and optimizer); in a cluster the chief reads
        it and every worker receives the chief's values."""
        if self.chief:
            self.checkpoints.load_backup(self.model, name, with_optimizer)
        self.engine.share_variables(list(self.model.weights) + (list(self.model.optimizer.variables)
                                                                if with_optimizer else []))

    def _commit(self, state: TrainState) -> None:
        self._committed = self.checkpoints.commit(state, self.history, self._committed)

    def _save_pending_best(self) -> None:
        """Bring ``best.keras`` up to date with the last committed state (the run stopped
        between phase ends: an error, Ctrl-C, a resume); only the chief, and only where it may lag."""
        if self.chief and not self.engine.best_at_once:
            self.best_keras.save_pending(self.model, self._committed)
