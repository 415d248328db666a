"""One process at a time in a run folder: a second one is refused at once, naming the
holder; a killed holder blocks nothing; a file as --run-dir is one line; an export's
stale temporary folder is cleaned by the next export."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# A small holder: takes the run folder's lock, says so, and keeps it until stdin closes.
HOLDER = """
import sys
from leafnet.runlock import hold
with hold(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def _hold(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), "--tag", "first-run"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line == "held\n", proc.stderr.read()
    return proc


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def _fit_args(leaves, run_dir, *more):
    return ["fit", "--data", leaves, "--backbone", "simple-cnn", "--weights", "none", "--image-size", "32",
            "--batch-size", "16", "--epochs", "1", "--finetune-epochs", "0", "--run-dir", run_dir, "--quiet", *more]


def _in_use(err: str, pid: int, hint: str) -> None:
    """One line, naming the holder's PID and command line, and what to do."""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.fullmatch(rf"error: run folder .+ is in use by PID {pid} \(python\S* -c .*--tag first-run\): "
                        rf"{re.escape(hint)}\n", err), err


def test_second_fit_on_a_held_run_folder_is_refused_at_once(leaves, tmp_path, tiny_config, run_cli):
    """While another live process holds the folder, `leafnet fit` with another --lr stops at
    once, naming it, and changes nothing: neither a started run (config.yaml as it was) nor a
    folder whose first run has not written anything yet."""
    import leafnet

    started = tmp_path / "started"
    leafnet.fit(tiny_config(leaves, started, transfer__epochs=1, finetune__epochs=0))
    (started / "metrics.json").unlink()                    # as if the first run were still going
    config = (started / "config.yaml").read_bytes()
    fresh = tmp_path / "fresh"
    for folder in (started, fresh):
        holder = _hold(folder)
        try:
            code, _, err = run_cli(*_fit_args(leaves, folder, "--lr", "0.01"))   # returns: it did not wait
        finally:
            _release(holder)
        assert code != 0
        _in_use(err, holder.pid, "wait for it or choose another --run-dir")
    assert (started / "config.yaml").read_bytes() == config
    assert not (started / "metrics.json").exists()
    assert not fresh.exists()                              # the refused start left nothing behind


def test_a_killed_holder_does_not_block_the_next_run(leaves, tmp_path, run_cli):
    """SIGKILL leaves a stale .lock file behind; the kernel dropped the lock, so the rerun
    takes it (and finishes the run) instead of waiting for a process that is gone."""
    from leafnet.runlock import hold

    run_dir = tmp_path / "killed"
    holder = _hold(run_dir)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert (run_dir / ".lock").read_text().startswith(f"{holder.pid}\n")  # what it left
    with hold(run_dir):
        assert (run_dir / ".lock").read_text().startswith(f"{os.getpid()}\n")
    code, _, err = run_cli(*_fit_args(leaves, run_dir))
    assert code == 0, err
    assert (run_dir / "metrics.json").is_file()
    assert not (run_dir / ".lock").exists()               # released at the end


def test_the_same_process_relocks_and_nests():
    """cv holds its folder while each fold's fit holds its own, and a folder held by this
    process may be held again (a new flock would conflict with its own and deadlock)."""
    import tempfile

    from leafnet.runlock import held, hold

    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "cv"
        with hold(root):
            with hold(root / "fold-1"), hold(root):
                assert held(root) and held(root / "fold-1")
            assert held(root) and not held(root / "fold-1")
            assert (root / ".lock").is_file()
        assert not held(root) and not root.exists()       # made by the lock, empty: removed


@pytest.mark.parametrize("command", ["fit", "cv", "search", "pretext"])
def test_run_dir_naming_a_file_is_one_line(leaves, tmp_path, run_cli, command):
    args = _fit_args(leaves, tmp_path / "notes.txt")
    args[0] = command
    if command == "pretext":
        args += ["--task", "rotation"]
    (tmp_path / "notes.txt").write_text("my notes\n")
    code, _, err = run_cli(*args)
    assert code != 0
    assert err == f"error: run folder {tmp_path / 'notes.txt'} is a file, not a folder; choose another --run-dir\n"
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"


def test_a_killed_exports_temporary_folder_is_removed_by_the_next_export(shared_run, tmp_path, run_cli):
    """SIGTERM during export leaves export/.savedmodel.XXX.tmp; the next export of the run
    removes it, but never while another process holds the run (its export may be live)."""
    _, src = shared_run
    run_dir = tmp_path / "run"
    shutil.copytree(src, run_dir, ignore=shutil.ignore_patterns("export"))
    stale = run_dir / "export" / ".savedmodel.k1ll3d.tmp"
    (stale / "variables").mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"half")
    holder = _hold(run_dir)
    try:
        code, _, err = run_cli("export", run_dir, "--format", "keras")
    finally:
        _release(holder)
    assert code != 0
    _in_use(err, holder.pid, "wait for it to finish, then export again")
    assert stale.is_dir()                                  # the holder's, as far as anyone knows
    code, _, err = run_cli("export", run_dir, "--format", "keras")
    assert code == 0, err
    assert (run_dir / "export" / "keras" / "model.keras").is_file()
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["keras"]
    assert not (run_dir / ".lock").exists()
