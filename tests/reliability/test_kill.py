"""SIGKILL at random moments of fit + export (tools/kill_fit.py, a few kills here; the README
figure comes from 200): every rerun resumes, every epoch once, nothing unreadable under a
final name, and the result equals the uninterrupted run."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TOOL = Path(__file__).resolve().parents[2] / "tools" / "kill_fit.py"


def test_random_sigkills_never_lose_a_run(tmp_path):
    out = subprocess.run([sys.executable, str(TOOL), "--kills", "3", "--seed", "3", "--out", str(tmp_path / "k")],
                         capture_output=True, text=True, timeout=900)
    summary = json.loads((tmp_path / "k" / "summary.json").read_text())
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert summary["kills"] == 3 and summary["problems"] == [] and summary["completed"] >= 1
    assert sum(summary["kills_by_moment"].values()) == 3


def test_unwritable_run_folder_is_one_clear_error_and_keeps_what_was_there(leaves, tmp_path, tiny_config, monkeypatch):
    """Disk full (ENOSPC) while the run commits its second epoch: one clear line naming what
    could not be written, the first epoch stays the committed one, every artifact already
    written is readable and nothing half-written is left under a final name; with space
    again the same command resumes."""
    import errno

    import keras
    import numpy as np

    import leafnet
    import leafnet.runs as runs
    from leafnet.errors import LeafnetError

    run_dir = tmp_path / "full"
    cfg = tiny_config(leaves, run_dir, transfer__epochs=3, finetune__epochs=0)
    original = runs.atomic_path
    commits = {"n": 0}

    def filling_up(path):
        if Path(path).name == "state.json":
            commits["n"] += 1
            if commits["n"] == 2:             # the second epoch's commit hits a full disk
                raise OSError(errno.ENOSPC, "No space left on device")
        return original(path)

    monkeypatch.setattr(runs, "atomic_path", filling_up)
    with pytest.raises(LeafnetError, match="No space left on device") as e:
        leafnet.fit(cfg)
    assert commits["n"] == 2                                             # it failed where it was meant to
    assert "\n" not in str(e.value) and str(e.value).startswith("could not write the run state in ")
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    assert state["epochs"] == 1                                          # the last committed epoch
    best = keras.saving.load_model(run_dir / "best.keras")               # written at epoch 1, readable
    assert all(np.isfinite(np.asarray(w)).all() for w in best.weights)
    assert runs.read_csv(run_dir / "split.csv") and json.loads((run_dir / "classes.json").read_text())
    assert not list(run_dir.rglob(".*.tmp*"))                            # nothing half-written
    monkeypatch.setattr(runs, "atomic_path", original)
    run = leafnet.fit(cfg)                                               # space again: it resumes
    assert [int(r["epoch"]) for r in run.history] == [1, 2, 3]


def test_a_start_that_failed_before_its_config_starts_again(leaves, tmp_path, tiny_config, monkeypatch):
    """Disk full while a start writes config.yaml (classes.json and split.csv written): the
    same command, with space again, starts the run instead of calling the folder foreign;
    a folder holding anything else is still refused (found by tools/fault_fit.py)."""
    import errno

    import leafnet
    import leafnet.runs as runs
    from leafnet.errors import LeafnetError

    run_dir = tmp_path / "start"
    cfg = tiny_config(leaves, run_dir, transfer__epochs=1, finetune__epochs=0)
    original = runs.atomic_path

    def full_at_config(path):
        if str(path).endswith("config.yaml"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(path)

    monkeypatch.setattr(runs, "atomic_path", full_at_config)
    with pytest.raises(LeafnetError, match="No space left on device"):
        leafnet.fit(cfg)
    assert (run_dir / "split.csv").is_file() and not (run_dir / "config.yaml").exists()
    monkeypatch.setattr(runs, "atomic_path", original)
    foreign = tmp_path / "foreign"
    shutil.copytree(run_dir, foreign)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(LeafnetError, match="exists and is not a leafnet run"):
        leafnet.fit(tiny_config(leaves, foreign, transfer__epochs=1, finetune__epochs=0))
    assert (foreign / "notes.txt").read_text() == "mine"
    run = leafnet.fit(cfg)
    assert [int(r["epoch"]) for r in run.history] == [1] and run.metrics


def test_killed_after_the_last_epoch_but_before_the_end(leaves, tmp_path, tiny_config):
    """Every epoch committed, model.keras / metrics.json not yet written: the rerun trains
    nothing, loads the final weights and finishes with the same metrics (found by kill_fit)."""
    import numpy as np

    import leafnet

    run_dir = tmp_path / "late"
    first = leafnet.fit(tiny_config(leaves, run_dir, transfer__epochs=2, finetune__epochs=1))
    metrics = first.metrics
    weights = [np.asarray(w) for w in first.load_model().weights]
    (run_dir / "metrics.json").unlink()
    (run_dir / "model.keras").unlink()
    again = leafnet.fit(tiny_config(leaves, run_dir, transfer__epochs=2, finetune__epochs=1))
    assert again.metrics["val_loss"] == pytest.approx(metrics["val_loss"], abs=1e-6)
    assert again.metrics["val_accuracy"] == metrics["val_accuracy"]
    for a, b in zip(weights, again.load_model().weights):
        np.testing.assert_array_equal(a, np.asarray(b))
    assert [int(r["epoch"]) for r in again.history] == [1, 2, 3]
