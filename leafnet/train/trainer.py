"""The two-phase trainer: transfer (frozen backbone), then fine-tune (last blocks unfrozen).

The trainer owns the epochs, and everything an epoch depends on is a function of the
seed and the epoch number: its shuffle order and mixing draws (each epoch has its own
dataset), the state of every random layer (dropout, augmentation) and the global seeds,
reset from ``(seed, epoch)`` before it starts. ``model.fit`` runs as many epochs per call
as the recipe allows (a *segment*: the epochs with the same unfrozen blocks and mixing)
over the epochs' datasets chained, with ``steps_per_epoch`` so Keras keeps one iterator;
a callback reseeds before each epoch and does the bookkeeping after it. After each epoch
the weights and the optimizer state are written atomically to ``backup/`` and a small
``state.json`` is committed last (:mod:`leafnet.train.checkpoint`); a run killed at any
moment (SIGKILL included) and started again with the same command continues from the last
finished epoch (or the one before, when the newest backup is unreadable) and ends with
the same weights as an uninterrupted run.

Under ``--distribute multiworker`` the epochs run on leafnet's own steps
(:mod:`leafnet.train.steps`) instead of ``model.fit``. Only the chief (worker 0) writes
backups and reads them: when the cluster restarts, the chief's state and weights are
broadcast to the other workers, which hold no state of their own.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leafnet.config import Config, PhaseConfig
from leafnet.console import interactive, progress_bar
from leafnet.errors import LeafnetError, TrainingDiverged
from leafnet.history import improved
from leafnet.runs import RunDir, io_guard, save_keras, write_json
from leafnet.train.checkpoint import Checkpoints, TrainState, finite_weights, load_arrays, model_arrays, save_arrays

BEST_EVERY_SECONDS = 60.0      # best.keras is rewritten at most this often within a phase


@dataclass
class Phase:
    name: str
    cfg: PhaseConfig


def plan_phases(cfg: Config) -> list[Phase]:
    """The phases a config asks for: transfer (if it has epochs), then fine-tune (if it has
    epochs and unfreezes at least one block)."""
    phases = []
    if cfg.transfer.epochs > 0:
        phases.append(Phase("transfer", cfg.transfer))
    if cfg.finetune.epochs > 0 and cfg.finetune.blocks != 0:
        phases.append(Phase("finetune", cfg.finetune))
    if not phases:
        raise LeafnetError("nothing to train: transfer.epochs is 0 and the fine-tune phase is off "
                           "(finetune.epochs or finetune.blocks is 0)")
    return phases


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 31-bit seed derived from (seed, epoch, stream)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0] & 0x7FFFFFFF)


def reseed(model, seed: int, epoch: int) -> None:
    """Make every random draw of epoch ``epoch`` a function of (seed, epoch) only.

    The state of each ``SeedGenerator`` of the model (Dropout, the augmentation layers)
    is overwritten: Keras keeps those states as variables that advance with every batch
    and that ``BackupAndRestore`` forgets. Python's and NumPy's global seeds are set too.
    TensorFlow's global seed is not: ``tf.random.set_seed`` clears TensorFlow's kernel
    cache, which cost ~0.4 s per epoch of the demo (15%), and no op of an epoch reads it
    (Keras draws from the seed generators; leafnet's datasets take explicit seeds). It is
    set once, from ``run.seed``, before the model is built.
    """
    import random

    random.seed(epoch_seed(seed, epoch))
    np.random.seed(epoch_seed(seed, epoch))
    i = 0
    for v in model.variables:
        if v.name == "seed_generator_state" or v.path.endswith("seed_generator_state"):
            v.assign(np.array([epoch_seed(seed, epoch, i + 1), 0], dtype=v.dtype))
            i += 1


# ------------------------------------------------------------------------------- history rows

def _round(x: float | None) -> float | None:
    """Six significant digits: float32 values printed in full (0.0010000000474974513) help nobody."""
    return None if x is None else float(f"{x:.7g}")


# ------------------------------------------------------------------------------- callbacks

def _callbacks(trainer: "Trainer", phase: "Phase", state: "TrainState", steps: int, verbose: int, epochs: bool):
    """The callbacks of one ``fit`` call: the NaN guard, the progress bar (``verbose`` 1),
    and, with ``epochs``, the one that runs the trainer's bookkeeping around every epoch."""
    import keras

    class Epochs(keras.callbacks.Callback):
        """Reseed before each epoch; record, back up and decide (best, plateau, early stop) after it."""

        def on_epoch_begin(self, epoch, logs=None):
            trainer._begin_epoch(phase, state)

        def on_epoch_end(self, epoch, logs=None):
            if trainer._end_epoch(phase, state, logs or {}):
                self.model.stop_training = True

    class NaNGuard(keras.callbacks.Callback):
        """Stop within one batch when the loss is not finite, naming where it happened."""

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise TrainingDiverged(
                    f"training diverged: the loss became {float(loss)} at {trainer._epoch['label']}, batch "
                    f"{batch + 1} ({phase.name} phase); lower the learning rate. The run folder keeps the last "
                    "good epoch")

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.bar = progress_bar(steps, stateful_metrics=["loss", "accuracy"])

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(batch + 1, [(k, float(v)) for k, v in (logs or {}).items() if k in ("loss", "accuracy")])

    return ([Epochs()] if epochs else []) + [NaNGuard()] + ([Progress()] if _bars(verbose) else [])


def _bars(verbose: int) -> bool:
    """Progress bars within epochs: ``verbose`` 1 on a terminal; else one line per epoch."""
    return verbose == 1 and interactive()


def mixing_summary(a) -> str:
    """The batch-level and random-policy augmentations that are on, for the console ("" if none)."""
    on = []
    if a.mixup:
        on.append(f"MixUp (alpha {a.mixup:g})")
    if a.cutmix:
        on.append(f"CutMix (alpha {a.cutmix:g})")
    if (a.mixup or a.cutmix) and a.mix_off_epochs:
        on[-1] += f", off for the last {a.mix_off_epochs} epoch(s) of each phase"
    if a.randaugment:
        on.append(f"RandAugment ({a.randaugment} operations per image, strength {a.randaugment_factor:g})")
    return "; ".join(on)


def _concatenate(datasets: list):
    """One dataset of ``datasets`` in turn, concatenated as a balanced tree (log depth)."""
    while len(datasets) > 1:
        datasets = [a.concatenate(b) for a, b in zip(datasets[::2], datasets[1::2])] + (
            [datasets[-1]] if len(datasets) % 2 else [])
    return datasets[0]


# ------------------------------------------------------------------------------- trainer

@dataclass
class Trainer:
    """Runs the phases of one run folder; see the module docstring.

    Args:
        cfg: the resolved config.
        run: the run folder (created, with its data files written).
        spec: the backbone.
        model: the built classifier (weights loaded).
        train, val: :class:`leafnet.data.pipeline.ImageSet` s, cached.
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
    _stage: Any = None
    _features: Any = None      # (train, val) FeatureCache of the transfer phase, when it caches
    _loss: Any = None
    _epoch: dict = field(default_factory=dict)    # the running epoch: label, lr, start time
    _committed: TrainState | None = None          # a copy of the last committed state
    _best_saved_at: float = -math.inf              # time.monotonic() of the last best.keras write

    # -- persistence
    def _state_path(self) -> Path:
        return self.run.backup / "state.json"

    def load_state(self) -> TrainState | None:
        """The state to resume from (see :meth:`leafnet.train.checkpoint.Checkpoints.resume`)."""
        return Checkpoints(self.run).resume()

    def _write(self, fn, what: str) -> None:
        """Write through :func:`io_guard`; only the chief writes."""
        if self.chief:
            io_guard(fn, what)

    def _restore(self, name: str, with_optimizer: bool) -> None:
        """Load backup ``name`` into the model (and optimizer); in a cluster the chief reads
        it and every worker receives the chief's values."""
        if self.chief:
            load_arrays(self.model, self.run.backup / name, with_optimizer)
        if self.steps is not None:
            from leafnet.train.steps import broadcast_variables

            variables = list(self.model.weights) + (list(self.model.optimizer.variables) if with_optimizer else [])
            broadcast_variables(self.steps.strategy, variables, is_chief=self.chief)

    def _commit(self, state: TrainState) -> None:
        self._committed = Checkpoints(self.run).commit(state, self.history, self._committed)

    # -- phases
    def _stage_blocks(self, phase: Phase, phase_epoch: int) -> int | str:
        """Blocks unfrozen at a phase epoch: all of ``finetune.blocks`` at once, or one more
        every ``unfreeze_every`` epochs (gradual unfreezing)."""
        blocks = self.cfg.finetune.blocks
        every = phase.cfg.unfreeze_every
        if phase.name != "finetune" or not every:
            return blocks
        total = len(self.spec.block_names) if blocks == "all" else int(blocks)
        n = min(total, 1 + phase_epoch // every)
        return "all" if n == total and blocks == "all" else n

    def _prepare_phase(self, phase: Phase, blocks: int | str) -> dict[str, int]:
        """Freeze for the phase and compile a fresh optimizer, loss and schedule."""
        import keras

        from leafnet.models.classifier import block_lr_multipliers, set_trainable
        from leafnet.train.optim import make_loss, make_optimizer, make_schedule

        counts = set_trainable(self.model, self.spec, phase.name, blocks=blocks, from_scratch=self.from_scratch)
        steps = self._steps_per_epoch()
        optimizer = make_optimizer(phase.cfg, make_schedule(phase.cfg, steps), ema=phase.cfg.use_ema)
        if phase.name == "finetune" and phase.cfg.lr_decay != 1.0:
            from leafnet.train.optimizers import LayerwiseLR

            optimizer = LayerwiseLR(optimizer, block_lr_multipliers(self.model, self.spec, phase.cfg.lr_decay))
        loss = make_loss(phase.cfg)
        self._loss = loss
        self.model.compile(optimizer=optimizer, loss=loss, metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                           jit_compile=self.cfg.run.jit_compile)
        self.model.optimizer.build(self.model.trainable_variables)
        self._stage = blocks
        self._features = self._feature_cache(phase) if self.steps is None else None
        if self.steps is not None and self.cfg.data.cache_features == "on" and phase.name == "transfer":
            self._log("  no feature cache: not under --distribute multiworker (each worker would compute all features)")
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

    def compile_final(self, model) -> None:
        """Freeze and compile ``model`` (a copy of the trained one) as the run ended."""
        self._compile_final(plan_phases(self.cfg)[-1], model)

    def _feature_cache(self, phase: Phase):
        """The (train, val) feature caches when this phase trains the head on cached
        backbone features (see :mod:`leafnet.train.features`), else None."""
        from leafnet.train.features import FeatureCache, caching_plan

        cfg = self.cfg
        a = cfg.augment
        use, why = caching_plan(cfg.data.cache_features, phase.name, self.from_scratch, self.model,
                                mixing=bool(a.mixup or a.cutmix))
        if not use:
            if cfg.data.cache_features == "on" or (phase.name == "transfer" and "augmentation is on" in why):
                self._log(f"  no feature cache: {why}")
            return None
        copies = cfg.data.feature_copies if why == "augmented copies" else 1
        common = dict(seed=cfg.run.seed, cache_dir=self.run.cache, batch_size=max(cfg.data.batch_size, 32),
                      progress=cfg.run.verbose == 1)
        train = FeatureCache(self.model, self.train, copies=copies, augment=why == "augmented copies",
                             label="train", **common)
        val = None if self.val is None else FeatureCache(self.model, self.val, copies=1, augment=False,
                                                         label="val", **common)
        self._log(f"  feature cache ({why}{f', {copies} copies' if copies > 1 else ''}): the head trains on "
                  f"{train.features.shape[2:]} backbone features computed once")
        return train, val

    def _steps_per_epoch(self) -> int:
        return -(-len(self._train_order(0)) // self.cfg.data.batch_size)

    def _train_order(self, epoch: int) -> np.ndarray:
        from leafnet.data.pipeline import balanced_order, epoch_order

        if self.cfg.data.balance == "oversample":
            return balanced_order(self.train.labels, self.cfg.run.seed, epoch)
        return epoch_order(len(self.train), self.cfg.run.seed, epoch)

    def fit(self) -> list[dict]:
        """Train every phase, resuming from ``backup/`` when it holds a state."""
        cfg, run = self.cfg, self.run
        phases = plan_phases(cfg)
        state = self.load_state() if self.chief else None
        if self.steps is not None:   # every worker resumes where the chief does
            from leafnet.train.steps import broadcast_json

            shared = broadcast_json(self.steps.strategy, state.to_dict() if state else None, is_chief=self.chief)
            state = TrainState.from_dict(shared) if shared else None
        state = state or TrainState()
        self._committed = state.copy()
        if state.epochs and self.chief:
            self.history = [dict(r) for r in state.history or []]
            self._log(f"resuming {run.root} after epoch {state.epochs} "
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
        if self.steps is not None:
            self._check_replicas_agree()
        state.complete = True
        self._write(lambda: self._commit(state), f"the run state in {run.backup}")
        return self.history

    def _run_phases(self, phases: list[Phase], state: TrainState) -> bool:
        """Train the phases from ``state`` on; False if there was nothing left to train."""
        ran = False
        for pi, phase in enumerate(phases):
            if pi < state.phase_index or (pi == state.phase_index and state.phase_done):
                continue
            ran = True
            resumed_here = pi == state.phase_index and state.phase_epochs > 0
            k = state.phase_epochs if resumed_here else 0
            counts = self._prepare_phase(phase, self._stage_blocks(phase, k))
            if resumed_here:
                # The optimizer state belongs to the stage it was saved in; a stage that starts
                # at this epoch (gradual unfreezing) starts with a fresh optimizer.
                same_stage = self._stage_blocks(phase, k - 1) == self._stage_blocks(phase, k)
                self._restore(state.weights, with_optimizer=same_stage)
            else:
                if pi > 0 and state.weights:   # start of a later phase: previous phase's final weights
                    self._restore(state.weights, with_optimizer=False)
                state.phase_index, state.phase_epochs, state.phase_done = pi, 0, False
                state.phase_best, state.phase_best_epoch, state.wait, state.plateau_wait = None, 0, 0, 0
                state.phase_best_weights = None
                if state.best_monitor != phase.cfg.monitor:
                    state.best, state.best_monitor = None, phase.cfg.monitor
                self._log_phase(phase, counts)
            self._run_phase(phase, state)
        return ran

    def _check_replicas_agree(self) -> None:
        """Every worker must end with the chief's weights, bit for bit: they applied the same
        all-reduced gradients to the same values (a failed broadcast would show here)."""
        from leafnet.train.features import weights_fingerprint
        from leafnet.train.steps import agree, broadcast_json

        mine = weights_fingerprint(self.model)
        chiefs = broadcast_json(self.steps.strategy, mine, is_chief=self.chief)
        if agree(self.steps.strategy, mine != chiefs):
            raise LeafnetError("the workers of the cluster ended with different weights; the run is not trustworthy "
                               "(a worker restored another state?): delete the run folder and train again")
        self._log(f"all {self.steps.strategy.num_replicas_in_sync} replicas hold the same weights ({mine})")

    def _mixing(self, phase: Phase, phase_epoch: int) -> bool:
        """Whether MixUp/CutMix mix the batches of this phase epoch (off for the last
        ``mix_off_epochs`` epochs of a phase)."""
        a = self.cfg.augment
        off = a.mix_off_epochs and phase_epoch >= phase.cfg.epochs - a.mix_off_epochs
        return bool(a.mixup or a.cutmix) and not off

    def _train_dataset(self, phase: Phase, phase_epoch: int, n: int):
        """The batches of global epoch ``n`` (phase epoch ``phase_epoch``): a function of the
        seed and the epoch only."""
        from leafnet.data.augment import mix_batches

        cfg = self.cfg
        if self._features is not None:
            return self._features[0].dataset(cfg.data.batch_size, self._train_order(n), epoch=n)
        ds = self.train.dataset(cfg.data.batch_size, self._train_order(n))
        if self._mixing(phase, phase_epoch):
            a = cfg.augment
            ds = mix_batches(ds, mixup=a.mixup, cutmix=a.cutmix, seed=epoch_seed(cfg.run.seed, n, 7))
        return ds

    def _by_hand(self, phase: Phase) -> bool:
        """Epochs run one at a time, not inside one ``fit`` call: with EMA (``fit`` moves the
        weights to their average when it ends, and each epoch must be judged on them) and on
        leafnet's own steps (multi-worker)."""
        return self.steps is not None or bool(phase.cfg.use_ema)

    def _segment(self, phase: Phase, state: TrainState) -> int:
        """How many epochs the next ``fit`` call runs, from the current one: all the epochs
        left with the same unfrozen blocks and mixing (one, see :meth:`_by_hand`)."""
        p, k = phase.cfg, state.phase_epochs
        if self._by_hand(phase):
            return 1
        end = k + 1
        while (end < p.epochs and self._stage_blocks(phase, end) == self._stage_blocks(phase, k)
               and self._mixing(phase, end) == self._mixing(phase, k)):
            end += 1
        return end - k

    def _run_phase(self, phase: Phase, state: TrainState) -> None:
        """Train the phase to its end, in as few ``fit`` calls as the recipe allows (see
        :meth:`_segment`): within a call, a callback reseeds before each epoch and does the
        bookkeeping after it, so an epoch computes the same wherever a call starts."""
        cfg = self.cfg
        bs = cfg.data.batch_size
        while not state.phase_done:
            stage = self._stage_blocks(phase, state.phase_epochs)
            if stage != self._stage:
                counts = self._prepare_phase(phase, stage)
                self._log(f"  gradual unfreezing: {stage} block(s) now train "
                          f"({sum(counts.values()):,} trainable weights); optimizer restarted")
            cached = self._features is not None
            fit_model = self._features[0].head_part if cached else self.model
            val_set = self._features[1] if cached else self.val
            val_ds = None if val_set is None else val_set.dataset(bs)   # None: no validation (val_split 0)
            steps = self._steps_per_epoch()
            k = self._segment(phase, state)
            n0, k0 = state.epochs, state.phase_epochs
            train_ds = _concatenate([self._train_dataset(phase, k0 + i, n0 + i) for i in range(k)])
            if not self._by_hand(phase):
                fit_model.fit(train_ds, initial_epoch=n0, epochs=n0 + k, steps_per_epoch=steps if k > 1 else None,
                              verbose=0, shuffle=False, class_weight=self.class_weight, validation_data=val_ds,
                              callbacks=_callbacks(self, phase, state, steps, cfg.run.verbose, epochs=True))
                continue
            # One epoch by hand: validated after fit (EMA: on the averaged weights), or on leafnet's steps.
            callbacks = _callbacks(self, phase, state, steps, cfg.run.verbose, epochs=False)
            self._begin_epoch(phase, state)
            if self.steps is None:
                h = fit_model.fit(train_ds, epochs=1, verbose=0, shuffle=False, class_weight=self.class_weight,
                                  callbacks=callbacks)
                logs = {key: v[-1] for key, v in h.history.items()}
                val = {} if val_ds is None else fit_model.evaluate(val_ds, verbose=0, return_dict=True)
            else:
                logs = self.steps.train_epoch(fit_model, self._loss, train_ds, class_weight=self.class_weight,
                                              callbacks=callbacks)
                val = {} if val_ds is None else self.steps.evaluate(fit_model, self._loss, val_ds)
            self._end_epoch(phase, state, {**logs, **{f"val_{key}": v for key, v in val.items()}})

    def _begin_epoch(self, phase: Phase, state: TrainState) -> None:
        """Before epoch ``state.epochs + 1``: name it, reseed every random draw from (seed,
        epoch), note the learning rate and the time."""
        import keras

        n = state.epochs
        label = f"epoch {n + 1} ({phase.name} {state.phase_epochs + 1}/{phase.cfg.epochs})"
        if _bars(self.cfg.run.verbose):
            print(label, flush=True)   # the bar's heading; in a log the epoch's one line names it
        reseed(self.model, self.cfg.run.seed, n)
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self._epoch = {"label": label, "lr": lr, "t0": time.perf_counter()}

    def _end_epoch(self, phase: Phase, state: TrainState, logs: dict) -> bool:
        """After an epoch: record it, keep the phase's and the run's best, lower the lr on a
        plateau, back up weights and optimizer, commit the state. Returns True to stop the
        phase early."""
        run, p, monitor = self.run, phase.cfg, phase.cfg.monitor
        label, lr = self._epoch["label"], self._epoch["lr"]
        seconds = time.perf_counter() - self._epoch["t0"]
        logs = {key: float(v) for key, v in logs.items()}
        n = state.epochs
        if not all(math.isfinite(logs.get(key, 0.0)) for key in ("loss", "val_loss")):
            raise TrainingDiverged(f"training diverged at {label}: loss {logs.get('loss')}, "
                                   f"val_loss {logs.get('val_loss')}; lower the learning rate. "
                                   "The run folder keeps the last good epoch")
        row = {"phase": phase.name, "epoch": n + 1, "phase_epoch": state.phase_epochs + 1, "lr": _round(lr),
               **{key: _round(logs.get(key)) for key in ("loss", "accuracy", "val_loss", "val_accuracy")},
               "epoch_seconds": round(seconds, 3)}
        arrays = model_arrays(self.model, True)
        if not finite_weights(arrays):
            raise TrainingDiverged(f"training diverged at {label}: the weights are no longer finite; "
                                   "lower the learning rate. The run folder keeps the last good epoch")
        self.history.append(row)
        self._log_epoch(row, self.cfg.run.verbose)
        value = logs.get(monitor)   # None without validation: no best, plateau or early stop
        state.epochs, state.phase_epochs = n + 1, state.phase_epochs + 1

        tag = f"{n + 1:05d}"
        if value is not None and improved(monitor, value, state.phase_best):
            # The phase's best weights are this epoch's backup (its optimizer part is not read).
            state.phase_best, state.phase_best_epoch, state.wait, state.plateau_wait = value, n + 1, 0, 0
            state.phase_best_weights = f"epoch-{tag}.npz"
        elif value is not None:
            state.wait += 1
            state.plateau_wait += 1
        if value is not None and improved(monitor, value, state.best):
            state.best, state.best_weights, state.best_saved = value, f"epoch-{tag}.npz", False
            # best.keras at once in a cluster (saving runs collectives: every worker saves,
            # the others into their scratch folders, at the same epochs) or when the last
            # write is old; else it waits for the phase's end (see _save_best).
            if self.steps is not None or time.monotonic() - self._best_saved_at >= BEST_EVERY_SECONDS:
                self._save_best(state)
        if value is not None and p.reduce_lr_patience and state.plateau_wait >= p.reduce_lr_patience:
            new_lr = max(lr * p.reduce_lr_factor, p.min_lr)
            if new_lr < lr:
                self.model.optimizer.learning_rate = new_lr
                self._log(f"  no improvement of {monitor} for {state.plateau_wait} epochs: lr {lr:g} -> {new_lr:g}")
            state.plateau_wait = 0
        stop = value is not None and bool(p.early_stopping) and state.wait >= p.early_stopping
        last = stop or state.phase_epochs >= p.epochs
        if last and state.phase_best_weights and state.phase_best_epoch != n + 1:
            # End of phase: go back to the phase's best epoch (EarlyStopping's restore_best_weights).
            self._restore(state.phase_best_weights, with_optimizer=False)
            self._log(f"  restored the weights of epoch {state.phase_best_epoch} "
                      f"(best {monitor} {state.phase_best:.4f})")
            arrays = model_arrays(self.model, True)
        state.weights = f"epoch-{tag}.npz"
        self._write(lambda: save_arrays(run.backup / state.weights, arrays), "a backup")
        if last and state.best_weights == state.phase_best_weights:
            self._save_best(state)       # the model holds the run's best weights now
        state.phase_done = last
        self._write(lambda: self._commit(state), f"the run state in {run.backup}")
        if stop:
            self._log(f"  early stopping: no improvement of {monitor} for {state.wait} epochs")
        return stop

    def _save_best(self, state: TrainState) -> None:
        """Write ``best.keras`` from the model, which holds the weights of ``state.best_weights``.

        Writing a ``.keras`` file takes ~50 ms even for a small model: at every improving
        epoch of a short epoch that is a few percent of the run. So it is written at once
        when the last write is over ``BEST_EVERY_SECONDS`` old (always at the first
        improvement), else at the end of the phase, when the run stops on an error, or
        when it completes; ``state.best_saved`` says whether it is up to date.
        """
        if not state.best_saved:
            io_guard(lambda: save_keras(self.model, self.run.best), str(self.run.best))
            state.best_saved = True
            self._best_saved_at = time.monotonic()

    def _save_pending_best(self) -> None:
        """Bring ``best.keras`` up to date with the last committed state, whatever the model
        holds now (the run stopped between phase ends: an error, Ctrl-C, a resume)."""
        state = self._committed
        if state is None or state.best_saved or not state.best_weights or not self.chief or self.steps is not None:
            return
        held = model_arrays(self.model, False)
        try:
            load_arrays(self.model, self.run.backup / state.best_weights, with_optimizer=False)
            self._save_best(state)
        finally:
            for v, a in zip(self.model.weights, held.values()):
                v.assign(a)
        write_json(self._state_path(), state.to_dict())

    def _log_phase(self, phase: Phase, counts: dict[str, int]) -> None:
        p = phase.cfg
        trainable = sum(counts.values())
        detail = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)
        recipe = f"{p.optimizer}{'+lookahead' if p.lookahead else ''}, {p.loss}, lr {p.lr:g}" + (
            f" ({p.schedule})" if p.schedule != "constant" else "")
        self._log(f"phase {phase.name}: up to {p.epochs} epochs, {recipe}, {trainable:,} trainable weights ({detail})")
        mixing = mixing_summary(self.cfg.augment)
        if mixing:
            self._log(f"  augmentation: {mixing}")

    # -- console
    def _log(self, text: str) -> None:
        if self.cfg.run.verbose:
            print(text, flush=True)

    def _log_epoch(self, row: dict, verbose: int) -> None:
        if verbose:
            shown = "  ".join(f"{key} {row[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                              if row[key] is not None)
            line = f"{shown}  lr {row['lr']:.3g}  {row['epoch_seconds']:.1f}s"
            print(f"  {line}" if _bars(verbose) else f"{self._epoch['label']}  {line}", flush=True)
