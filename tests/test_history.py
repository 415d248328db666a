"""Which epoch's weights each phase ended on, from history.csv: by hand and against the trainer."""

import json

import pytest

from leafnet.history import restored_epochs

ROWS = [("transfer", 1, 1.0, 0.5), ("transfer", 2, 0.8, 0.6), ("transfer", 3, 0.9, 0.7),
        ("finetune", 4, 0.7, 0.8), ("finetune", 5, 0.6, 0.8), ("finetune", 6, 0.6, 0.75)]
HISTORY = [{"phase": p, "epoch": e, "val_loss": v, "val_accuracy": a} for p, e, v, a in ROWS]
LOSS = {"transfer": "val_loss", "finetune": "val_loss"}


def test_each_phase_keeps_its_best_epoch_by_its_monitor():
    assert restored_epochs(HISTORY, LOSS) == {"transfer": 2, "finetune": 5}            # 5 and 6 tie: the first
    assert restored_epochs(HISTORY, {"transfer": "val_accuracy", "finetune": "val_loss"}) == \
        {"transfer": 3, "finetune": 5}
    assert restored_epochs(HISTORY, {"finetune": "val_accuracy"}) == {"finetune": 4}   # no monitor: no mark


def test_csv_strings_and_a_phase_still_running():
    as_csv = [{k: str(v) for k, v in r.items()} for r in HISTORY]
    assert restored_epochs(as_csv, LOSS) == {"transfer": 2, "finetune": 5}
    assert restored_epochs(as_csv, LOSS, last_phase_done=False) == {"transfer": 2}
    assert restored_epochs(as_csv[:3], LOSS, last_phase_done=False) == {}


@pytest.mark.slow
def test_the_epoch_the_trainer_restored(shared_run):
    from leafnet.runs import read_csv

    _, run_dir = shared_run
    history = read_csv(run_dir / "history.csv")
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    restored = restored_epochs(history, LOSS)
    assert restored["finetune"] == state["phase_best_epoch"]        # the trainer's own record of the last phase
    assert json.loads((run_dir / "metrics.json").read_text())["restored_epochs"] == restored
