"""leafnet search end to end on tiny leaves: every tuner, failed trials, resume, best.yaml,
a changed search refused, and KerasTuner's chief/worker mode on loopback."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

import leafnet
from leafnet.errors import ConfigError, LeafnetError
from leafnet.runs import read_csv
from leafnet.tune.search import search

pytestmark = pytest.mark.slow

SPACE = {"transfer.lr": {"min": 1e-3, "max": 1e-2, "sampling": "log"}, "data.batch_size": [8, 16]}
GRID = {"transfer.lr": [1e-3, 3e-3], "data.batch_size": [8, 16]}


def base(leaves, run_dir, tiny_config, **over):
    return tiny_config(leaves, run_dir, **{"transfer__epochs": 1, "finetune__epochs": 0, **over})


@pytest.mark.parametrize("tuner, space, trials", [("random", SPACE, 3), ("grid", GRID, 3), ("bayesian", SPACE, 3),
                                                  ("hyperband", SPACE, 2)])
def test_each_tuner_runs_and_writes_its_results(tuner, space, trials, leaves, tmp_path, tiny_config):
    root = tmp_path / tuner
    result = search(base(leaves, root, tiny_config, transfer__epochs=2), tuner=tuner, max_trials=trials, space=space)
    rows = read_csv(root / "trials.csv")
    assert len(rows) == trials and len({r["trial"] for r in rows}) == trials
    assert all(r["status"] == "COMPLETED" for r in rows)
    assert list(rows[0])[:4] == ["trial", "status", "transfer.lr", "data.batch_size"]
    for r in rows:
        assert 1e-3 <= float(r["transfer.lr"]) <= 1e-2 and r["data.batch_size"] in ("8", "16")
        info = json.loads((root / "trials" / r["trial"] / "search_trial.json").read_text())
        cfg = yaml.safe_load((root / "trials" / r["trial"] / "config.yaml").read_text())
        # the trial trained with exactly its hyperparameters (batch size rebuilds the data pipeline)
        assert cfg["transfer"]["lr"] == pytest.approx(float(r["transfer.lr"]), rel=1e-5)
        assert cfg["data"]["batch_size"] == int(r["data.batch_size"]) == info["values"]["data.batch_size"]
        assert float(r["val_loss"]) == pytest.approx(info["metrics"]["val_loss"], rel=1e-5)
        assert cfg["transfer"]["early_stopping"] == 2
    if tuner == "grid":   # grid visits distinct points
        assert len({(r["transfer.lr"], r["data.batch_size"]) for r in rows}) == trials
    if tuner == "hyperband":
        assert all(r["budget"] for r in rows)
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert result.best["trial"] == best["trial"]
    assert (root / "plots" / "search.png").stat().st_size > 5000


def test_best_yaml_trains_as_is(leaves, tmp_path, tiny_config, run_cli):
    root = tmp_path / "s"
    result = search(base(leaves, root, tiny_config), tuner="random", max_trials=2, space=SPACE)
    best = yaml.safe_load((root / "best.yaml").read_text())
    assert best["transfer"]["lr"] == pytest.approx(result.best["transfer.lr"])
    code, out, err = run_cli("fit", "--config", root / "best.yaml", "--run-dir", tmp_path / "again", "--quiet")
    assert code == 0, err
    again = leafnet.Run(tmp_path / "again").metrics
    trial = leafnet.Run(root / "trials" / result.best["trial"]).metrics
    assert again["val_loss"] == pytest.approx(trial["val_loss"], abs=1e-6)   # same config, same seed: same run


def _poison_batches_of(monkeypatch, sizes):
    """Training batches of the given sizes carry a NaN image: a trial with such a batch size
    diverges for real (leafnet's divergence checks stop it)."""
    import numpy as np

    from leafnet.data.pipeline import ImageSet

    original = ImageSet.dataset

    def poisoned(self, batch_size, order=None):
        ds = original(self, batch_size, order)
        if order is None or batch_size not in sizes:
            return ds
        return ds.map(lambda x, y: (x * np.nan, y))

    monkeypatch.setattr(ImageSet, "dataset", poisoned)


def test_a_failed_trial_is_recorded_and_the_search_goes_on(leaves, tmp_path, tiny_config, monkeypatch):
    _poison_batches_of(monkeypatch, {8})
    root = tmp_path / "f"
    result = search(base(leaves, root, tiny_config), tuner="grid", max_trials=2, space={"data.batch_size": [8, 16]})
    rows = {r["data.batch_size"]: r for r in read_csv(root / "trials.csv")}
    assert rows["8"]["status"] == "FAILED" and "training diverged" in rows["8"]["reason"]
    assert not (root / "trials" / rows["8"]["trial"] / "model.keras").exists()
    assert rows["16"]["status"] == "COMPLETED" and result.best["trial"] == rows["16"]["trial"]
    assert yaml.safe_load((root / "best.yaml").read_text())["data"]["batch_size"] == 16


def test_no_completed_trial_is_an_error_and_writes_no_best(leaves, tmp_path, run_cli, monkeypatch):
    _poison_batches_of(monkeypatch, {8, 16})
    code, out, err = run_cli("search", "--data", leaves, "--backbone", "simple-cnn", "--weights", "none",
                             "--image-size", "32", "--epochs", "1", "--finetune-epochs", "0",
                             "--tuner", "random", "--max-trials", "3", "--max-failures", "2",
                             "--space", _space_file(tmp_path, {"data.batch_size": [8, 16]}),
                             "--run-dir", tmp_path / "bad", "--quiet")
    assert code == 2 and "2 failed trials in a row" in err and "training diverged" in err and err.count("\n") == 1
    assert not (tmp_path / "bad" / "best.yaml").exists()
    assert [r["status"] for r in read_csv(tmp_path / "bad" / "trials.csv")] == ["FAILED", "FAILED"]


def _space_file(tmp_path, space):
    p = tmp_path / "space.yaml"
    p.write_text(yaml.safe_dump(space))
    return p


def test_quiet_cli_prints_an_aligned_leaderboard_and_no_kerastuner_lines(leaves, tmp_path, run_cli):
    root = tmp_path / "q"
    args = ["search", "--data", leaves, "--backbone", "simple-cnn", "--weights", "none", "--image-size", "32",
            "--epochs", "1", "--finetune-epochs", "0", "--tuner", "random", "--max-trials", "2",
            "--space", _space_file(tmp_path, SPACE), "--run-dir", root, "--quiet"]
    for attempt in ("first run", "resume"):
        code, out, err = run_cli(*args)
        assert code == 0, err
        for kerastuner_line in ("Reloading Tuner", "Search: Running Trial", "Complete [", "So Far", "elapsed"):
            assert kerastuner_line not in out + err, (attempt, out)
        assert "\x1b[" not in out, attempt
        lines = out.splitlines()
        header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["#", "trial"])
        csv = read_csv(root / "trials.csv")
        keys = list(csv[0])[2:4]   # the space's keys, in the order the space file gives them
        assert sorted(keys) == ["data.batch_size", "transfer.lr"]
        assert lines[header].split() == ["#", "trial", *keys, "val_loss", "val_accuracy", "epochs", "status"]
        infos = [json.loads((root / "trials" / r["trial"] / "search_trial.json").read_text()) for r in csv]
        infos.sort(key=lambda i: i["metrics"]["val_loss"])
        rows = [line for line in lines[header + 1:] if line.split()[:1] in (["1"], ["2"], ["3"])]
        assert len(rows) == 2, (attempt, out)
        starts = set()
        for rank, (row, info) in enumerate(zip(rows, infos), 1):   # ranked by the objective
            loss = f"{info['metrics']['val_loss']:.4f}"
            values = {"transfer.lr": f"{info['values']['transfer.lr']:.3g}",
                      "data.batch_size": str(info["values"]["data.batch_size"])}
            assert row.split() == [str(rank), info["trial_id"], *(values[k] for k in keys), loss,
                                   f"{info['metrics']['val_accuracy']:.4f}", "1", "COMPLETED"], (attempt, out)
            starts.add(row.index(" " + loss + " ") + 1)
        assert len(starts) == 1, (attempt, out)   # the objective column lines up
        assert f"best config: {root / 'best.yaml'}" in lines, (attempt, out)
        assert yaml.safe_load((root / "best.yaml").read_text())["data"]["batch_size"] == infos[0]["values"][
            "data.batch_size"]


def test_a_changed_search_is_refused(leaves, tmp_path, tiny_config):
    root = tmp_path / "c"
    search(base(leaves, root, tiny_config), tuner="random", max_trials=1, space=SPACE)
    with pytest.raises(ConfigError, match="different space"):
        search(base(leaves, root, tiny_config), tuner="random", max_trials=1, space=GRID)
    with pytest.raises(ConfigError, match=r"different config \(model.dropout: 0.2 in the folder, 0.4 now\)"):
        search(base(leaves, root, tiny_config, model__dropout=0.4), tuner="random", max_trials=1, space=SPACE)
    # more trials on the same search is a resume, not a change
    assert len(search(base(leaves, root, tiny_config), tuner="random", max_trials=2, space=SPACE).trials) == 2


def _cli(leaves, root, space, *extra):
    return [sys.executable, "-m", "leafnet", "search", "--data", str(leaves), "--backbone", "simple-cnn",
            "--weights", "none", "--image-size", "32", "--epochs", "2", "--finetune-epochs", "0", "--seed", "5",
            "--tuner", "random", "--max-trials", "3", "--space", str(space), "--run-dir", str(root), "--quiet", *extra]


def test_killed_search_resumes_to_the_same_trials(leaves, tmp_path):
    space = _space_file(tmp_path, SPACE)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cli(leaves, ref, space), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_cli(leaves, killed, space), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:   # kill inside the third trial, after an epoch of it
        if (killed / "trials" / "2" / "history.csv").exists():
            break
        assert proc.poll() is None, "the search ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "trials.csv").exists()
    out = subprocess.run(_cli(leaves, killed, space), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    a, b = read_csv(ref / "trials.csv"), read_csv(killed / "trials.csv")
    assert [r["trial"] for r in b] == ["0", "1", "2"]
    for ra, rb in zip(a, b):   # the same hyperparameters as the uninterrupted seeded search
        assert (ra["transfer.lr"], ra["data.batch_size"]) == (rb["transfer.lr"], rb["data.batch_size"])
        assert ra["status"] == rb["status"] == "COMPLETED"
        assert float(ra["val_loss"]) == pytest.approx(float(rb["val_loss"]), abs=1e-5)


def test_distributed_chief_and_two_workers_on_loopback(leaves, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    space = _space_file(tmp_path, SPACE)
    root = tmp_path / "dist"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    dist = ["--oracle-address", "127.0.0.1", "--oracle-port", str(port)]
    env.pop("LEAFNET_ORACLE_TOKEN", None)
    # a worker silent for 5 s would lose its trial: the workers' heartbeats keep longer trials
    chief = subprocess.Popen(_cli(leaves, root, space, *dist, "--distributed", "chief", "--worker-timeout", "5"),
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    announced = chief.stdout.readline()   # the chief on loopback generates the token and prints it
    assert announced.startswith("oracle token: "), announced + chief.stderr.read()[-3000:]
    env["LEAFNET_ORACLE_TOKEN"] = announced.split()[2]
    workers = [subprocess.Popen(_cli(leaves, root, space, *dist, "--distributed", "worker", "--worker-id", w), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in ("w1", "w2")]
    try:
        for p in workers:
            assert p.wait(timeout=400) == 0, p.stderr.read()[-3000:]
        assert chief.wait(timeout=120) == 0, chief.stderr.read()[-3000:]
    finally:
        for p in [chief, *workers]:
            p.kill()
    rows = read_csv(root / "trials.csv")
    assert [r["trial"] for r in rows] == ["0", "1", "2"] and all(r["status"] == "COMPLETED" for r in rows)
    ran_by = {json.loads((root / "trials" / r["trial"] / "search_trial.json").read_text())["tuner_id"] for r in rows}
    assert ran_by == {"w1", "w2"}
    assert (root / "best.yaml").is_file()


def test_cli_errors_are_one_line(run_cli, leaves, tmp_path):
    code, _, err = run_cli("search", "--data", leaves, "--tuner", "annealing")
    assert code == 2 and "annealing" in err
    code, _, err = run_cli("search", "--data", leaves, "--distributed", "worker")
    assert code == 2 and "--oracle-address" in err
    bad = _space_file(tmp_path, {"model.dropout": {"min": 0, "max": 2.0}})
    code, _, err = run_cli("search", "--data", leaves, "--space", bad, "--run-dir", tmp_path / "x")
    assert code == 2 and "model.dropout" in err and not (tmp_path / "x").exists()
    with pytest.raises(LeafnetError):
        search({"model": {"backbone": "simple-cnn"}}, tuner="random")
