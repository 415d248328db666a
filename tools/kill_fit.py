"""SIGKILL a `leafnet fit` + `leafnet export` job at random moments, again and again, and check
that every rerun resumes, every epoch is trained once, no artifact under its final name is
ever unreadable, and the finished run equals an uninterrupted one.

    python tools/kill_fit.py --kills 200                # the figure in the README (Reliability)
    python tools/kill_fit.py --kills 5 --out /tmp/k     # what tests/reliability/test_kill.py runs
    python tools/kill_fit.py --kills 200 --snapshot      # jobs run a frozen copy of HEAD

A 200-kill run takes about 45 minutes on 2 cores. With ``--snapshot`` the jobs import leafnet
from a ``git archive`` of HEAD unpacked in OUT/code, so editing the working tree meanwhile
cannot change what is being killed.

The job is a tiny two-phase fit (simple-cnn, 32 px, 3 transfer + 2 fine-tune epochs) followed
by a SavedModel export, so kills land in start-up, batches, epoch ends, checkpoint writes,
the phase switch and the export. Kill times are drawn uniformly over the length of an
uninterrupted job. After each kill the tool checks every file under its final name, then
starts the same command again (which resumes); when a job completes, its final weights are
compared with the uninterrupted reference (atol 1e-6) and a new run folder is started.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CODE: str | None = None   # --snapshot: the folder the jobs import leafnet from

# The job in two parts, so that tools/fault_fit.py can put its fault hooks between the import
# set-up and the run. argv: DATA RUN [CODE|""] [extra fit options...]
JOB_SETUP = """
import sys
if len(sys.argv) > 3 and sys.argv[3]:   # a frozen copy of the code, ahead of the editable install's finder
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, sys.argv[3])
    import leafnet
    assert leafnet.__file__.startswith(sys.argv[3]), f"leafnet imported from {leafnet.__file__}"
"""
JOB_MAIN = """
from leafnet.cli import main
code = main(["fit", "--data", sys.argv[1], "--backbone", "simple-cnn", "--weights", "none", "--image-size", "32",
             "--batch-size", "16", "--epochs", "3", "--finetune-epochs", "2", "--seed", "7", "--run-dir", sys.argv[2],
             "--set", "transfer.early_stopping=0", "--set", "finetune.early_stopping=0", "--set", "augment.rotation=0.2",
             "--quiet", *sys.argv[4:]])
if code == 0:
    code = main(["export", sys.argv[2], "--format", "savedmodel"])
sys.exit(code)
"""
JOB = JOB_SETUP + JOB_MAIN


def start(data: Path, run: Path, extra=(), job: str = JOB, env: dict | None = None,
          stderr=subprocess.PIPE) -> subprocess.Popen:
    """Start the job on ``data`` into ``run``; ``extra`` fit options go after the usual ones."""
    return subprocess.Popen([sys.executable, "-c", job, str(data), str(run), CODE or "", *map(str, extra)],
                            stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                            env={**os.environ, **env} if env else None)


def snapshot(out: Path) -> str:
    """Unpack a ``git archive`` of HEAD into OUT/code for the jobs to import leafnet from."""
    code = out / "code"
    code.mkdir()
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", "HEAD"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"jobs run the code of {commit} from {code}", flush=True)
    return str(code)


def prepare(out: Path, frozen: bool, job: str = JOB, env: dict | None = None) -> tuple[Path, float, dict]:
    """A fresh OUT with the images (OUT/leaves) and the uninterrupted reference run
    (OUT/reference); returns (data folder, seconds the reference took, its final weights)."""
    from leafnet.datasets import generate

    global CODE
    shutil.rmtree(out, ignore_errors=True)
    data = out / "leaves"
    generate(data, classes=4, per_class=30, size=48, seed=1)
    CODE = snapshot(out) if frozen else None
    t0 = time.perf_counter()
    ref = start(data, out / "reference", job=job, env=env)
    _, err = ref.communicate()
    if ref.returncode != 0:
        raise SystemExit(f"the uninterrupted reference job failed:\n{err}")
    duration = time.perf_counter() - t0
    print(f"uninterrupted job: {duration:.1f} s", flush=True)
    return data, duration, final_weights(out / "reference")


def where(run: Path) -> str:
    """Where the job was when killed, from what it had committed."""
    if (run / "export" / "savedmodel").is_dir():
        return "done"
    if any((run / "export").glob(".savedmodel.*")) if (run / "export").is_dir() else False:
        return "export"
    if (run / "metrics.json").exists():
        return "export"
    if not (run / "config.yaml").exists():
        return "start-up"
    if not (run / "history.csv").exists():
        return "epoch 1"
    rows = list(csv.DictReader(open(run / "history.csv", encoding="utf-8")))
    if len(rows) >= 5:
        return "finishing"
    return f"epoch {len(rows) + 1}" + (" (phase switch)" if len(rows) == 3 else "")


def check_artifacts(run: Path) -> list[str]:
    """Every file under a final name parses or loads; returns the problems."""
    import keras
    import yaml

    problems = []

    def attempt(path: Path, fn):
        if path.exists():
            try:
                fn(path)
            except Exception as e:  # noqa: BLE001 - any failure to read is the finding
                problems.append(f"{path.relative_to(run)}: {type(e).__name__}: {e}")

    attempt(run / "config.yaml", lambda p: yaml.safe_load(p.read_text()))
    for name in ("classes.json", "data_report.json", "metrics.json", "backup/state.json"):
        attempt(run / name, lambda p: json.loads(p.read_text()))
    for name in ("split.csv", "history.csv"):
        attempt(run / name, lambda p: list(csv.DictReader(open(p, encoding="utf-8"))))
    for name in ("best.keras", "model.keras"):
        attempt(run / name, lambda p: keras.saving.load_model(p, safe_mode=True))
    state = run / "backup" / "state.json"
    if state.exists():
        try:
            s = json.loads(state.read_text())
            for key in ("weights", "phase_best_weights"):
                if s.get(key):
                    import numpy as np

                    with np.load(run / "backup" / s[key]) as z:
                        [z[k] for k in z.files]
        except Exception as e:  # noqa: BLE001
            problems.append(f"backup referenced by state.json: {type(e).__name__}: {e}")
    export = run / "export" / "savedmodel"
    if export.exists():
        attempt(export / "model_card.json", lambda p: json.loads(p.read_text()))
        if not (export / "saved_model.pb").is_file():
            problems.append("export/savedmodel without saved_model.pb")
    return problems


def final_weights(run: Path) -> dict:
    import numpy as np

    state = json.loads((run / "backup" / "state.json").read_text())
    with np.load(run / "backup" / state["weights"]) as z:
        return {k: z[k] for k in z.files if k.startswith("w")}


def verify_complete(run: Path, reference: dict) -> list[str]:
    import numpy as np

    problems = check_artifacts(run)
    rows = list(csv.DictReader(open(run / "history.csv", encoding="utf-8")))
    if [int(r["epoch"]) for r in rows] != [1, 2, 3, 4, 5]:
        problems.append(f"epochs in history.csv: {[r['epoch'] for r in rows]}")
    got = final_weights(run)
    worst = max(float(np.abs(got[k] - reference[k]).max()) for k in reference)
    if worst > 1e-6:
        problems.append(f"final weights differ from the uninterrupted run by {worst:g}")
    if not (run / "export" / "savedmodel" / "saved_model.pb").is_file():
        problems.append("no export")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/kill-fit")
    ap.add_argument("--snapshot", action="store_true", help="run the jobs from a git archive of HEAD")
    args = ap.parse_args(argv)

    out = Path(args.out).resolve()
    data, duration, reference = prepare(out, args.snapshot)
    rng = random.Random(args.seed)

    kills, completed, problems = 0, 0, []
    at = collections.Counter()
    run_no = 0
    run = out / f"run-{run_no}"
    while kills < args.kills:
        proc = start(data, run)
        delay = rng.uniform(0.0, duration)
        try:
            code = proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            at[where(run)] += 1
            found = check_artifacts(run) if run.exists() else []
            problems += [f"kill {kills} ({where(run)}): {p}" for p in found]
            if kills % 10 == 0:
                print(f"{kills} kills, {completed} completed jobs, {len(problems)} problems", flush=True)
            continue
        if code != 0:
            problems.append(f"a rerun failed (exit {code}): {proc.stderr.read()[-500:]}")
        else:
            problems += [f"job {run_no}: {p}" for p in verify_complete(run, reference)]
            completed += 1
        run_no += 1
        run = out / f"run-{run_no}"
    # finish the last interrupted job
    if run.exists():
        proc = start(data, run)
        if proc.wait() != 0:
            problems.append(f"the last rerun failed: {proc.stderr.read()[-500:]}")
        else:
            problems += [f"job {run_no}: {p}" for p in verify_complete(run, reference)]
            completed += 1
    print(f"\n{kills} SIGKILLs, {completed} jobs completed after their kills, {len(problems)} problems")
    print("kills by moment: " + ", ".join(f"{k}: {v}" for k, v in sorted(at.items())))
    for p in problems:
        print("PROBLEM", p)
    summary = {"kills": kills, "completed": completed, "problems": problems, "kills_by_moment": dict(at),
               "uninterrupted_seconds": round(duration, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
