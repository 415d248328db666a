"""Damaged backups and history after a kill: the run resumes from the newest readable epoch
(and ends with the same weights as an uninterrupted run), refuses with one line when none is
readable or when state.json names a file outside backup/, and rebuilds history.csv from the
state."""

import json
import shutil

import numpy as np
import pytest

import leafnet
import leafnet.runs as runs
from leafnet.errors import LeafnetError

pytestmark = pytest.mark.slow


class Killed(BaseException):
    """Stands for SIGKILL: nothing catches it as an error."""


def weights(run_dir):
    """The weights of the run's final model (model.keras), by position."""
    return {i: np.asarray(w) for i, w in enumerate(runs.Run(run_dir).load_model().weights)}


def epochs_in_history(run_dir):
    return [int(r["epoch"]) for r in runs.read_csv(run_dir / "history.csv")]


def config(leaves, run_dir, tiny_config):
    return tiny_config(leaves, run_dir, transfer__epochs=3, finetune__epochs=0)


@pytest.fixture(scope="module")
def reference(leaves, tmp_path_factory, tiny_config):
    run_dir = tmp_path_factory.mktemp("backups") / "reference"
    leafnet.fit(config(leaves, run_dir, tiny_config))
    return weights(run_dir)


@pytest.fixture(scope="module")
def killed(leaves, tmp_path_factory, tiny_config):
    """A run folder killed during epoch 3 (epochs 1 and 2 committed)."""
    run_dir = tmp_path_factory.mktemp("backups") / "killed"
    original = runs.atomic_path
    writes = {"n": 0}

    def dying(path):
        if str(path).endswith("history.csv"):
            writes["n"] += 1
            if writes["n"] == 3:            # the third epoch's commit starts
                raise Killed()
        return original(path)

    runs.atomic_path = dying
    try:
        with pytest.raises(Killed):
            leafnet.fit(config(leaves, run_dir, tiny_config))
    finally:
        runs.atomic_path = original
    assert json.loads((run_dir / "backup" / "state.json").read_text())["epochs"] == 2
    return run_dir


@pytest.fixture
def copy(killed, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(killed, run_dir)
    return run_dir


def newest(run_dir):
    return run_dir / "backup" / json.loads((run_dir / "backup" / "state.json").read_text())["weights"]


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_an_unreadable_newest_backup_falls_back_to_the_previous_epoch(copy, leaves, tiny_config, reference, capsys,
                                                                      damage):
    name = newest(copy).name
    assert name == "epoch-00002.npz"
    if damage == "corrupt":
        newest(copy).write_bytes(b"PK\x03\x04 not a zip")
    else:
        newest(copy).unlink()
    capsys.readouterr()
    leafnet.fit(config(leaves, copy, tiny_config))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "unreadable" in line]
    assert len(lines) == 1, err
    assert f"backup/{name} is unreadable (" in lines[0] and lines[0].endswith("; resuming from epoch 1 instead")
    assert epochs_in_history(copy) == [1, 2, 3]
    got = weights(copy)
    worst = max(float(np.abs(got[k] - reference[k]).max()) for k in reference)
    assert worst <= 1e-6


def test_no_readable_backup_is_one_line_and_deletes_nothing(copy, run_cli):
    for f in (copy / "backup").glob("epoch-*.npz"):
        f.write_bytes(b"garbage")
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    code, out, err = run_cli("fit", "--config", copy / "config.yaml", "--run-dir", copy, "--quiet")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "backup/epoch-00002.npz is unreadable" in lines[0], lines[0]
    assert f"delete {copy / 'backup' / 'state.json'} to restart the run from scratch, or restore the file" in lines[0]
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_backup_name_outside_backup_is_refused(copy, leaves, tiny_config, where):
    outside = copy.parent / "outside.npz"
    shutil.copy(newest(copy), outside)              # a readable file: reading it would "work"
    state_file = copy / "backup" / "state.json"
    state = json.loads(state_file.read_text())
    state["weights"] = "../../outside.npz" if where == "relative" else str(outside)
    state_file.write_text(json.dumps(state))
    with pytest.raises(LeafnetError, match="outside") as e:
        leafnet.fit(config(leaves, copy, tiny_config))
    assert "\n" not in str(e.value)
    assert state["weights"] in str(e.value)


@pytest.mark.parametrize("damage", ["deleted", "truncated", "one row too many"])
def test_history_is_rebuilt_from_the_state(copy, leaves, tiny_config, monkeypatch, damage):
    from leafnet.train.trainer import Trainer

    rows = runs.read_csv(copy / "history.csv")
    if damage == "deleted":
        (copy / "history.csv").unlink()
    elif damage == "truncated":
        runs.write_csv(copy / "history.csv", list(rows[0]), [list(r.values()) for r in rows[:1]])
    else:   # killed between writing history.csv and state.json
        extra = {**rows[-1], "epoch": "3", "phase_epoch": "3"}
        runs.write_csv(copy / "history.csv", list(rows[0]), [list(r.values()) for r in [*rows, extra]])

    def killed_at_once(*args, **kwargs):
        raise Killed()

    with monkeypatch.context() as m:
        m.setattr(Trainer, "on_epoch_begin", killed_at_once)
        with pytest.raises(Killed):
            leafnet.fit(config(leaves, copy, tiny_config))
    assert runs.read_csv(copy / "history.csv") == rows         # as the state says, before any epoch trains
    leafnet.fit(config(leaves, copy, tiny_config))
    assert epochs_in_history(copy) == [1, 2, 3]
