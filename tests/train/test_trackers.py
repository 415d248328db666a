"""The trackers against hand-written sequences of monitored values, and their state
round-trips through state.json's fields."""

from __future__ import annotations

import json

import pytest

from leafnet.train.checkpoint import TrainState
from leafnet.train.trackers import Best, EarlyStopping, ReduceLROnPlateau


def test_best_of_a_loss_and_of_an_accuracy():
    loss = Best("val_loss")
    got = [loss.update(v, e, f"e{e}") for e, v in enumerate([1.0, 0.8, 0.8, 0.9, 0.5], start=1)]
    assert got == [True, True, False, False, True]          # a tie is no improvement
    assert (loss.value, loss.epoch, loss.weights) == (0.5, 5, "e5")
    acc = Best("val_accuracy")
    assert [acc.update(v, e) for e, v in enumerate([0.5, 0.4, 0.6, 0.6], start=1)] == [True, False, True, False]
    assert (acc.value, acc.epoch) == (0.6, 3)
    assert not acc.update(None, 5) and acc.epoch == 3       # no validation: nothing to compare


def test_best_state_uses_state_json_names():
    phase = Best("val_loss", prefix="phase_", stored=("value", "epoch", "weights"))
    phase.update(0.7, 4, "epoch-00004.npz")
    assert phase.get_state() == {"phase_best": 0.7, "phase_best_epoch": 4, "phase_best_weights": "epoch-00004.npz"}
    run = Best("val_loss", stored=("value", "weights", "monitor"))
    run.update(0.7, 4, "epoch-00004.npz")
    assert run.get_state() == {"best": 0.7, "best_weights": "epoch-00004.npz", "best_monitor": "val_loss"}
    state = TrainState()
    state.update(phase.get_state())
    state.update(run.get_state())
    stored = json.loads(json.dumps(state.to_dict()))      # as state.json holds it
    again = Best("val_loss", prefix="phase_", stored=("value", "epoch", "weights"))
    again.set_state(stored)
    assert (again.value, again.epoch, again.weights) == (0.7, 4, "epoch-00004.npz")
    assert not again.update(0.7, 5) and again.update(0.69, 6)
    phase.reset()
    assert phase.get_state() == {"phase_best": None, "phase_best_epoch": 0, "phase_best_weights": None}
    with pytest.raises(KeyError, match="not fields"):
        state.update({"best_epoch": 3})


def test_a_best_of_another_metric_is_forgotten_but_its_file_kept():
    acc = Best("val_accuracy", stored=("value", "weights", "monitor"))
    acc.set_state({"best": 0.3, "best_weights": "epoch-00002.npz", "best_monitor": "val_loss"})
    assert acc.value is None and acc.weights == "epoch-00002.npz"
    assert acc.get_state()["best_monitor"] == "val_accuracy"
    assert acc.update(0.1, 3)                   # any accuracy beats a forgotten loss
    same = Best("val_loss", stored=("value", "weights", "monitor"))
    same.set_state({"best": 0.3, "best_weights": "epoch-00002.npz", "best_monitor": "val_loss"})
    assert same.value == 0.3 and not same.update(0.4, 3)


def test_early_stopping_after_patience_epochs_without_improvement():
    stop = EarlyStopping(2)
    improved = [True, False, True, False, False, False]
    assert [stop.update(i) for i in improved] == [False, False, False, False, True, True]
    assert stop.get_state() == {"wait": 3}
    never = EarlyStopping(0)
    assert [never.update(False) for _ in range(4)] == [False] * 4 and never.wait == 4   # counted, never stops
    resumed = EarlyStopping(2)
    resumed.set_state({"wait": 1})
    assert resumed.update(False)                # one more epoch without improvement stops


def test_plateau_lowers_the_lr_every_patience_epochs_down_to_min_lr():
    plateau = ReduceLROnPlateau(patience=2, factor=0.5, min_lr=0.02)
    lr, seen = 0.1, []
    for improved in [False, False, False, True, False, False, False, False, False, False]:
        new = plateau.update(improved, lr)
        seen.append(new)
        lr = new if new is not None else lr
    # fires after 2 epochs without improvement (0.1 -> 0.05), counts again from 0, the
    # improvement resets the count, then 0.05 -> 0.025 -> 0.02 (min_lr) -> nothing lower
    assert seen == [None, 0.05, None, None, None, 0.025, None, 0.02, None, None]
    assert plateau.waited == 2 and plateau.get_state() == {"plateau_wait": 0}
    off = ReduceLROnPlateau(patience=0, factor=0.5, min_lr=0.0)
    assert [off.update(False, 0.1) for _ in range(3)] == [None] * 3 and off.get_state() == {"plateau_wait": 3}
    resumed = ReduceLROnPlateau(patience=3, factor=0.1, min_lr=0.0)
    resumed.set_state({"plateau_wait": 2})
    assert resumed.update(False, 1.0) == pytest.approx(0.1)
