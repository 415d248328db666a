"""A run's checkpoints: the per-epoch backups in ``backup/``, ``backup/state.json`` and
the cadence of ``best.keras``.

After each epoch the trainer writes the weights and optimizer state to
``backup/epoch-NNNNN.npz``, then ``history.csv``, then ``state.json`` (each atomically):
``state.json`` is the commit. It holds the history rows (``history.csv`` is rebuilt from
them on resume, trimmed or completed) and the previous epoch's state, whose backups are
kept until the next commit, so a resume whose newest backup is unreadable (a damaged
disk, a file deleted by hand) falls back one epoch and trains that epoch again.

``best.keras`` (:class:`BestKeras`) is written from the model when the run's best epoch
improves, at most every ``every_seconds`` within a phase; ``state.best_saved`` says whether
it is up to date, and a state that says no names the backup to write it from.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leafnet import console
from leafnet.errors import LeafnetError
from leafnet.runs import RunDir, atomic_path, io_guard, read_csv, save_keras, write_csv, write_json

HISTORY_COLUMNS = ["phase", "epoch", "phase_epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy",
                   "epoch_seconds"]
STATE_VERSION = 1
BEST_EVERY_SECONDS = 60.0      # best.keras is rewritten at most this often within a phase


@dataclass
class TrainState:
    """What a resumed run needs besides the weights; stored as ``backup/state.json``."""

    phase_index: int = 0
    phase_epochs: int = 0          # epochs finished in the current phase
    epochs: int = 0                # epochs finished in the whole run
    phase_done: bool = False
    complete: bool = False
    best: float | None = None      # best monitored value over the run (best.keras)
    best_monitor: str | None = None
    phase_best: float | None = None
    phase_best_epoch: int = 0
    wait: int = 0                  # epochs without improvement (early stopping)
    plateau_wait: int = 0          # epochs without improvement (plateau lr)
    weights: str | None = None     # backup file with weights (+ optimizer state)
    phase_best_weights: str | None = None
    best_weights: str | None = None  # backup file with the weights of the run's best epoch
    best_saved: bool = True        # best.keras holds them
    history: list[dict] | None = None  # the rows of history.csv (None: a state.json without them)
    previous: dict | None = None   # the state of the epoch before, without its history and previous

    def to_dict(self) -> dict:
        return {"version": STATE_VERSION, **copy.deepcopy(self.__dict__)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainState":
        d = {k: v for k, v in d.items() if k != "version"}
        return cls(**copy.deepcopy(d))

    def copy(self) -> "TrainState":
        return TrainState.from_dict(self.to_dict())

    def update(self, fields: dict[str, Any]) -> None:
        """Set the fields of a tracker's ``get_state()`` (see :mod:`leafnet.train.trackers`)."""
        unknown = set(fields) - set(self.__dict__)
        if unknown:
            raise KeyError(f"not fields of the run state: {sorted(unknown)}")
        self.__dict__.update(copy.deepcopy(fields))

    def backups(self) -> set[str]:
        """The backup files this state names."""
        return {n for n in (self.weights, self.phase_best_weights, self.best_weights) if n}

    def needed(self) -> list[str]:
        """The backup files a resume from this state reads: the weights, the phase's best
        (restored at the phase's end) and the run's best when ``best.keras`` lags behind."""
        names = [self.weights] if self.epochs else []
        if self.phase_best_weights and not self.phase_done:
            names.append(self.phase_best_weights)
        if self.best_weights and not self.best_saved:
            names.append(self.best_weights)
        return list(dict.fromkeys(names))


def backup_name(epoch: int) -> str:
    """The backup file of run epoch ``epoch`` (from 1)."""
    return f"epoch-{epoch:05d}.npz"


def round_value(x: float | None) -> float | None:
    """Seven significant digits: float32 values printed in full (0.0010000000474974513) help nobody."""
    return None if x is None else float(f"{x:.7g}")


def history_row(phase: str, epoch: int, phase_epoch: int, lr: float, logs: dict[str, float], seconds: float) -> dict:
    """The ``history.csv`` row of a finished epoch (``epoch``, ``phase_epoch`` from 1)."""
    return {"phase": phase, "epoch": epoch, "phase_epoch": phase_epoch, "lr": round_value(lr),
            **{key: round_value(logs.get(key)) for key in ("loss", "accuracy", "val_loss", "val_accuracy")},
            "epoch_seconds": round(seconds, 3)}


# ------------------------------------------------------------------------------- arrays

def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def model_arrays(model, with_optimizer: bool) -> dict[str, np.ndarray]:
    arrays = {f"w{i:05d}": np.asarray(v) for i, v in enumerate(model.weights)}
    if with_optimizer and model.optimizer is not None:
        arrays.update({f"o{i:05d}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    return arrays


def load_arrays(model, path: Path, with_optimizer: bool) -> None:
    with np.load(path) as data:
        weights = [data[k] for k in sorted(k for k in data.files if k.startswith("w"))]
        if len(weights) != len(model.weights):
            raise LeafnetError(f"backup {path} does not match the model ({len(weights)} vs {len(model.weights)} "
                               "weights); delete the run folder's backup/ to start over")
        for v, a in zip(model.weights, weights):
            v.assign(a)
        if with_optimizer:
            opt = [data[k] for k in sorted(k for k in data.files if k.startswith("o"))]
            variables = model.optimizer.variables
            if len(opt) != len(variables):
                raise LeafnetError(f"backup {path} holds optimizer state that does not match this phase; "
                                   "delete the run folder's backup/ to start over")
            for v, a in zip(variables, opt):
                v.assign(a)


def finite_weights(arrays: dict[str, np.ndarray]) -> bool:
    """Every floating model weight of :func:`model_arrays` output is finite."""
    return all(np.isfinite(a).all() for k, a in arrays.items() if k[0] == "w" and np.issubdtype(a.dtype, np.floating))


def unreadable(path: Path) -> str | None:
    """Why the backup ``path`` cannot be read (every array is read: the zip checks its CRCs), or None."""
    try:
        with np.load(path) as data:
            for k in data.files:
                data[k]
    except FileNotFoundError:
        return "missing"
    except (zipfile.BadZipFile, EOFError, KeyError, zlib.error) as e:
        return f"damaged: {e}"
    except ValueError:
        return "not an .npz archive"
    except OSError as e:
        return e.strerror or str(e)
    return None


# ------------------------------------------------------------------------------- the run's checkpoints

class Checkpoints:
    """``backup/state.json``, the backups it names and ``history.csv`` of one run folder."""

    def __init__(self, run: RunDir):
        self.run = run
        self.state_path = run.backup / "state.json"

    def read(self) -> TrainState | None:
        """The committed state as stored, or None before the first commit."""
        p = self.state_path
        if not p.exists():
            return None
        try:
            return TrainState.from_dict(json.loads(p.read_text()))
        except (ValueError, TypeError, AttributeError) as e:
            raise LeafnetError(f"cannot resume: {p} is unreadable ({e}); delete the run folder to start over") from None

    def resume(self) -> TrainState | None:
        """The state to resume from, its ``history`` filled and ``history.csv`` rewritten to
        match it: the committed one, or the epoch before when a backup the committed one
        needs is unreadable (said in one line on stderr).

        Raises:
            LeafnetError: state.json names a file outside ``backup/``, or neither state is usable.
        """
        state = self.read()
        if state is None:
            return None
        previous = TrainState.from_dict(state.previous) if state.previous else None
        for s in (state, previous):
            for name in s.backups() if s else ():
                self._check_inside(name)
        problem = self._problem(state)
        if problem:
            name, why = problem
            earlier = self._problem(previous) if previous else None
            if earlier or not previous:
                also = (f"the previous epoch's backup/{earlier[0]} is unreadable too ({earlier[1]})" if earlier
                        else "no earlier backup is kept")
                raise LeafnetError(f"cannot resume {self.run.root}: backup/{name} is unreadable ({why}) and {also}; "
                                   f"delete {self.state_path} to restart the run from scratch, or restore the file")
            where = (f"resuming from epoch {previous.epochs} instead" if previous.epochs
                     else "starting the run again from its first epoch instead")
            console.warn(f"backup/{name} is unreadable ({why}); {where}")
            previous.history = (state.history or [])[:previous.epochs] if state.history is not None else None
            state = previous
        if state.history is None:
            state.history = self._history_from_csv(state.epochs)
        else:
            state.history = state.history[:state.epochs]
        if state.epochs:
            io_guard(lambda: self.write_history(state.history), str(self.run.history))
        return state

    def commit(self, state: TrainState, history: list[dict], committed: TrainState | None) -> TrainState:
        """Write ``history.csv``, then ``state.json`` (the commit), then delete the backups that
        neither this state nor the previous epoch's names; returns a copy of what was committed.

        ``committed`` is the state committed last: the previous epoch's, unless it holds as
        many epochs (the run's final commit), which keeps its own previous.
        """
        state.history = [dict(r) for r in history]
        if committed is not None and committed.epochs < state.epochs:
            state.previous = {k: v for k, v in committed.to_dict().items() if k not in ("history", "previous")}
        elif committed is not None:
            state.previous = copy.deepcopy(committed.previous)
        self.write_history(history)
        write_json(self.state_path, state.to_dict())
        keep = state.backups() | (TrainState.from_dict(state.previous).backups() if state.previous else set())
        for f in self.run.backup.glob("*.npz"):
            if f.name not in keep:
                with contextlib.suppress(OSError):
                    f.unlink()
        return state.copy()

    def write_state(self, state: TrainState) -> None:
        """Rewrite ``state.json`` with ``state`` as it is (no backup is deleted)."""
        write_json(self.state_path, state.to_dict())

    def save_backup(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Write :func:`model_arrays` output as ``backup/NAME``."""
        save_arrays(self.run.backup / name, arrays)

    def load_backup(self, model, name: str, with_optimizer: bool) -> None:
        """Load ``backup/NAME`` into ``model`` (and its optimizer)."""
        load_arrays(model, self.run.backup / name, with_optimizer)

    def write_history(self, rows: list[dict]) -> None:
        write_csv(self.run.history, HISTORY_COLUMNS, [[row.get(c, "") for c in HISTORY_COLUMNS] for row in rows])

    # -- helpers
    def _check_inside(self, name: Any) -> None:
        backup = self.run.backup.resolve()
        bad = not isinstance(name, str) or (backup / name).resolve().parent != backup
        if bad:
            raise LeafnetError(f"refusing to resume {self.run.root}: {self.state_path} names the backup {name!r}, "
                               f"which resolves outside {backup}; delete {self.state_path} to restart the run from "
                               "scratch")

    def _problem(self, state: TrainState) -> tuple[str, str] | None:
        """(file, why) for the first backup ``state`` needs that cannot be read, or None."""
        for name in state.needed():
            why = unreadable(self.run.backup / name)
            if why:
                return name, why
        return None

    def _history_from_csv(self, epochs: int) -> list[dict]:
        """The rows of ``history.csv`` up to ``epochs`` (a state that does not hold them)."""
        if not self.run.history.exists():
            return []
        rows = [r for r in read_csv(self.run.history) if r.get("epoch") and int(r["epoch"]) <= epochs]
        out = []
        for r in rows:
            row: dict[str, Any] = {"phase": r["phase"]}
            for k in HISTORY_COLUMNS[1:]:
                v = r.get(k, "")
                row[k] = (int(v) if k in ("epoch", "phase_epoch") else float(v)) if v != "" else ""
            out.append(row)
        return out


# ------------------------------------------------------------------------------- best.keras

class BestKeras:
    """When ``best.keras`` is written.

    Writing a ``.keras`` file costs a noticeable share of a short epoch, so at an improving
    epoch it is written at once only when its last write is ``every_seconds`` old (always at
    the first improvement), else at the end of the phase, when the run stops on an error, or
    when it completes.
    """

    def __init__(self, checkpoints: Checkpoints, every_seconds: float = BEST_EVERY_SECONDS):
        self.checkpoints, self.every_seconds = checkpoints, every_seconds
        self.saved_at = -math.inf       # time.monotonic() of the last write

    @property
    def path(self) -> Path:
        return self.checkpoints.run.best

    def due(self) -> bool:
        """Whether an improvement now is written at once."""
        return time.monotonic() - self.saved_at >= self.every_seconds

    def save(self, model, state: TrainState) -> None:
        """Write ``best.keras`` from ``model``, which holds the weights of ``state.best_weights``,
        unless ``state.best_saved`` says it is up to date."""
        if not state.best_saved:
            io_guard(lambda: save_keras(model, self.path), str(self.path))
            state.best_saved = True
            self.saved_at = time.monotonic()

    def save_pending(self, model, state: TrainState | None) -> None:
        """Bring ``best.keras`` up to date with the committed ``state``, whatever ``model``
        holds now (its weights are put back), and record it in ``state.json``."""
        if state is None or state.best_saved or not state.best_weights:
            return
        held = model_arrays(model, False)
        try:
            self.checkpoints.load_backup(model, state.best_weights, with_optimizer=False)
            self.save(model, state)
        finally:
            for v, a in zip(model.weights, held.values()):
                v.assign(a)
        self.checkpoints.write_state(state)
