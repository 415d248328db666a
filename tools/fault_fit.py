"""Inject faults into the tiny `leafnet fit` + `leafnet export` job of tools/kill_fit.py and
check that each one ends in a correct resume or a correct one-line refusal.

    python tools/fault_fit.py --cases 300 --seed 1 --out /tmp/faults   # docs/reliability.md
    python tools/fault_fit.py --cases 10 --out /tmp/f                  # tests/reliability/test_faults.py
    python tools/fault_fit.py --cases 20 --kinds backup,data --snapshot

Case kinds (drawn at random with --seed, each kind once per round of len(--kinds) cases):

- kill: SIGKILL at a random moment, then the same command again.
- backup: kill after a random epoch, then truncate, overwrite with random bytes or delete a
  file under backup/ (often the newest weights state.json names), or delete history.csv.
- second: while a job runs, the same command with another --lr on the same folder.
- diskfull: the Nth write of the job (N random) fails with ENOSPC, then the job runs again.
- data: kill after a random epoch, then swap two classes' images (same file names), overwrite
  an image with another valid one, or add an image; restore the images if refused.

A case ends ``resumed`` (the finished run equals the uninterrupted reference, atol 1e-6),
``refused`` (the fault made leafnet stop with exit status != 0 and one line on stderr naming
the reason, no traceback, every file under a final name readable, and the run then finished
equal to the reference once the fault was gone), or ``problem``. OUT/summary.json has the
counts per kind and outcome and every problem with its stderr tail; the folders of cases
without problems are deleted.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import kill_fit
from kill_fit import check_artifacts, verify_complete, where

KINDS = ("kill", "backup", "second", "diskfull", "data")

# Runs in the job between kill_fit's import set-up and the fit. FAULT_FIT_ENOSPC="MODE:N:ROOT":
# the Nth write fails with ENOSPC; MODE "before" / "after" counts leafnet.runs.atomic_path
# blocks (failing before or after the block wrote its temporary file), "open" counts Python
# open() calls for writing under ROOT. FAULT_FIT_COUNT=FILE: fail nothing, write both counts
# to FILE at exit. FAULT_FIT_PAUSE="M:S": the Mth commit of backup/state.json first waits S
# seconds (a slow job, so that a second one surely finds it training).
FAULT = """
import os as _os
if {"FAULT_FIT_ENOSPC", "FAULT_FIT_COUNT", "FAULT_FIT_PAUSE"} & set(_os.environ):
    import atexit, builtins, contextlib, errno, io, json, time
    import leafnet.runs as _runs
    _pause_at, _pause = map(float, _os.environ.get("FAULT_FIT_PAUSE", "0:0").split(":"))
    _mode, _nth, _root = (_os.environ.get("FAULT_FIT_ENOSPC") or "count:0:" + sys.argv[2]).split(":", 2)
    _nth, _seen = int(_nth), {"atomic": 0, "open": 0, "state": 0}

    def _write(counter, what):
        _seen[counter] += 1
        if _seen[counter] == _nth and (counter == "open") == (_mode == "open"):
            raise OSError(errno.ENOSPC, "No space left on device", str(what))

    _atomic, _open = _runs.atomic_path, io.open

    @contextlib.contextmanager
    def _atomic_path(path):
        with _atomic(path) as tmp:
            if _os.path.basename(path) == "state.json":
                _seen["state"] += 1
                if _seen["state"] == _pause_at:
                    time.sleep(_pause)
            if _mode != "after":
                _write("atomic", path)
            yield tmp
            if _mode == "after":
                _write("atomic", path)

    def _open_for(file, mode="r", *args, **kwargs):
        if (any(c in mode for c in "wax+") and isinstance(file, (str, _os.PathLike))
                and _os.path.abspath(file).startswith(_root)):
            _write("open", file)
        return _open(file, mode, *args, **kwargs)

    _runs.atomic_path = _atomic_path   # before any leafnet module imports the name
    builtins.open = io.open = _open_for
    if _os.environ.get("FAULT_FIT_COUNT"):
        atexit.register(lambda: _open(_os.environ["FAULT_FIT_COUNT"], "w").write(json.dumps(_seen)))
"""
JOB = kill_fit.JOB_SETUP + FAULT + kill_fit.JOB_MAIN


@dataclass
class Result:
    code: int | None      # None: killed by the tool
    stderr: str
    seconds: float


@dataclass
class Context:
    out: Path
    data: Path
    duration: float               # an uninterrupted job, seconds
    reference: dict               # its final weights
    writes: dict                  # its write counts (see FAULT)
    tf_import: float = 0.0        # seconds to import TensorFlow

    @property
    def timeout(self) -> float:
        return 5 * self.duration + 120


@dataclass
class Case:
    no: int
    kind: str
    ctx: Context
    rng: random.Random
    data: Path
    detail: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    jobs: int = 0
    damaged: Path | None = None   # a backup file this case damaged

    @property
    def folder(self) -> Path:
        return self.ctx.out / f"case-{self.no:04d}"

    @property
    def run(self) -> Path:
        return self.folder / "run"

    def launch(self, extra=(), env=None) -> tuple[subprocess.Popen, Path]:
        self.jobs += 1
        log = self.folder / f"stderr-{self.jobs}.txt"
        with open(log, "w") as err:
            return kill_fit.start(self.data, self.run, extra, job=JOB, env=env, stderr=err), log

    def wait(self, proc: subprocess.Popen, log: Path, kill_at: float | None = None, kill_when=None) -> Result:
        """Wait for ``proc``; SIGKILL it ``kill_at`` s after now or as soon as ``kill_when()`` is
        true (``code`` None), or after the context's timeout (a hang, a problem)."""
        t0 = time.perf_counter()
        while proc.poll() is None:
            hang = time.perf_counter() - t0 > self.ctx.timeout
            if hang or (kill_at is not None and time.perf_counter() - t0 > kill_at) or (kill_when and kill_when()):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                if hang:
                    self.problems.append(f"{log.stem}: still running after {self.ctx.timeout:.0f} s (a hang)")
                code = None
                break
            time.sleep(0.02)
        else:
            code = proc.returncode
        res = Result(code, log.read_text(errors="replace"), time.perf_counter() - t0)
        if res.stderr.strip():
            self.stderr.append(f"[{log.stem}, exit {res.code}] {res.stderr[-1500:]}")
        return res

    def job(self, extra=(), env=None, **kw) -> Result:
        proc, log = self.launch(extra, env)
        return self.wait(proc, log, **kw)

    def epochs(self) -> int:
        try:
            return json.loads((self.run / "backup" / "state.json").read_text())["epochs"]
        except (OSError, ValueError, KeyError):
            return 0

    def kill_after_epoch(self, n: int) -> bool:
        """Run the job and SIGKILL it once epoch ``n`` is committed; False if it finished first."""
        res = self.job(kill_when=lambda: self.epochs() >= n)
        if res.code is not None:
            self.detail.append(f"finished (exit {res.code}) before it could be killed after epoch {n}")
            if res.code != 0:
                self.problems.append(f"an uninterrupted job failed (exit {res.code})")
            return False
        self.detail.append(f"killed after epoch {self.epochs()} ({where(self.run)})")
        self.artifacts()
        return True

    def artifacts(self) -> None:
        found = check_artifacts(self.run)
        if self.damaged is not None and self.damaged.exists():   # what the case broke on purpose
            try:
                state = json.loads((self.run / "backup" / "state.json").read_text())
                named = {state.get("weights"), state.get("phase_best_weights"), "state.json"}
            except (OSError, ValueError):
                named = {"state.json"}
            if self.damaged.name in named:
                found = [p for p in found if not p.startswith(("backup/state.json", "backup referenced by"))]
        self.problems += [f"unreadable under its final name: {p}" for p in found]

    def refused(self, res: Result, *, names: tuple[str, ...] = (), why: str = "") -> bool:
        """``res`` is a correct refusal: exit != 0, one line on stderr, no traceback, naming one
        of ``names`` / containing ``why``; nothing under a final name unreadable."""
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        bad = []
        if res.code == 0:
            bad.append("exit 0 where a refusal was expected")
        if "Traceback" in res.stderr:
            bad.append("a traceback on stderr")
        elif len(lines) != 1:
            bad.append(f"{len(lines)} lines on stderr where one was expected")
        if names and not any(n in res.stderr for n in names):
            bad.append(f"the refusal names none of {', '.join(names[:3])}{'...' if len(names) > 3 else ''}")
        if why and why not in res.stderr:
            bad.append(f"the refusal does not say {why!r}")
        self.problems += bad
        self.artifacts()
        return not bad

    def completes(self, res: Result | None = None) -> bool:
        """Rerun (unless ``res`` is that rerun) and check that the run equals the reference."""
        res = self.job() if res is None else res
        if res.code != 0:
            if res.code is not None:
                last = (res.stderr.strip().splitlines() or [""])[-1]
                self.problems.append(f"a rerun that should resume failed (exit {res.code}): {last[:300]}")
            return False
        found = verify_complete(self.run, self.ctx.reference)
        self.problems += found
        return not found


# ---------------------------------------------------------------------------------- kinds

def case_kill(case: Case) -> str:
    delay = case.rng.uniform(0.0, case.ctx.duration)
    res = case.job(kill_at=delay)
    if res.code is None:
        case.detail.append(f"SIGKILL at {delay:.1f} s ({where(case.run)})")
        case.artifacts()
        case.completes()
    else:
        case.detail.append(f"finished (exit {res.code}) before the kill at {delay:.1f} s")
        case.completes(res)
    return "resumed"


def case_backup(case: Case) -> str:
    rng, backup = case.rng, case.run / "backup"
    if not case.kill_after_epoch(rng.randint(1, 4)):
        case.completes(Result(0, "", 0.0))
        return "resumed"
    state = json.loads((backup / "state.json").read_text())
    pick = rng.random()
    if pick < 0.15:
        target, how = case.run / "history.csv", "delete"
    else:
        newest = backup / state["weights"]
        files = sorted(p for p in backup.iterdir() if p.is_file())
        target = newest if pick < 0.5 else rng.choice(files)
        how = rng.choice(["truncate", "random bytes", "delete"])
    size, case.damaged = target.stat().st_size, target
    if how == "delete":
        target.unlink()
    elif how == "truncate":
        keep = rng.randrange(size)
        os.truncate(target, keep)
        how = f"truncate to {keep} of {size} bytes"
    else:
        at, n = rng.randrange(size), rng.randint(1, 4096)
        with open(target, "r+b") as f:
            f.seek(at)
            f.write(rng.randbytes(n))
        how = f"{n} random bytes at {at} of {size}"
    case.detail.append(f"{how}: {target.relative_to(case.run)}")
    res = case.job()
    if res.code == 0:
        case.completes(res)
        return "resumed"
    if target.name == "history.csv":
        case.problems.append("refused where a resume was expected (history.csv deleted)")
    case.refused(res)
    return "refused"


def case_second(case: Case) -> str:
    pause = case.ctx.tf_import + 40
    first, log = case.launch(env={"FAULT_FIT_PAUSE": f"{case.rng.randint(1, 5)}:{pause}"})
    deadline = time.perf_counter() + case.ctx.timeout
    while proc_alive(first) and not (case.run / "config.yaml").exists() and time.perf_counter() < deadline:
        time.sleep(0.05)
    time.sleep(case.rng.uniform(0.0, 2.0))
    if not proc_alive(first):
        case.detail.append("the first job ended before the second started")
        case.completes(case.wait(first, log))
        return "resumed"
    case.detail.append(f"second job (--lr 0.05) started while the first, paused {pause:.0f} s at an epoch's "
                       f"commit, was at {where(case.run)}")
    limit = 1.5 * case.ctx.tf_import + 30   # its import shares the CPU with the first job
    second = case.job(["--lr", "0.05"], kill_at=limit)
    if second.code is None:
        case.problems.append(f"the second job was still running {limit:.0f} s after its start (killed)")
    else:
        case.detail.append(f"second job exit {second.code} after {second.seconds:.1f} s")
        case.refused(second, names=(str(first.pid),))
    res = case.wait(first, log)
    case.completes(res)
    lr = read_lr(case.run)
    if lr != read_lr(case.ctx.out / "reference"):
        case.problems.append(f"config.yaml transfer.lr is {lr} after the second job")
    return "refused"


def case_diskfull(case: Case) -> str:
    mode = case.rng.choice(["before", "after", "open"])
    total = case.ctx.writes["open" if mode == "open" else "atomic"]
    nth = case.rng.randint(1, total)
    case.detail.append(f"write {nth} of {total} fails with ENOSPC ({mode})")
    res = case.job(env={"FAULT_FIT_ENOSPC": f"{mode}:{nth}:{case.run}"})
    if res.code == 0:
        case.detail.append("the job finished despite the failed write")
        case.completes(res)
        return "resumed"
    if res.code is None:
        return "refused"
    case.refused(res, why="No space left on device")
    case.completes()
    return "refused"


def case_data(case: Case) -> str:
    rng, pristine = case.rng, case.ctx.data
    shutil.copytree(pristine, case.data)
    if not case.kill_after_epoch(rng.randint(1, 4)):
        case.completes(Result(0, "", 0.0))
        return "resumed"
    classes = sorted(p for p in case.data.iterdir() if p.is_dir())
    change = rng.choice(["swap", "overwrite", "add"])
    if change == "swap":
        a, b = rng.sample(classes, 2)
        changed = []
        for fa, fb in zip(sorted(a.iterdir()), sorted(b.iterdir())):
            da, db = fa.read_bytes(), fb.read_bytes()
            fa.write_bytes(db)
            fb.write_bytes(da)
            changed += [fa.name, fb.name]
        case.detail.append(f"swapped the images of {a.name} and {b.name}")
    else:
        folder = rng.choice(classes)
        image = rng.choice(sorted(folder.iterdir())) if change == "overwrite" else folder / "added_9999.png"
        noise_image(image, rng)
        changed = [image.name]
        case.detail.append(f"{'overwrote' if change == 'overwrite' else 'added'} {folder.name}/{image.name}")
    res = case.job()
    if change == "add":
        case.completes(res)
        return "resumed"
    if res.code == 0:
        case.problems.append("resumed on changed images where a refusal was expected")
        return "refused"
    case.refused(res, names=tuple(changed))
    shutil.rmtree(case.data)
    shutil.copytree(pristine, case.data)
    case.detail.append("restored the images")
    case.completes()
    return "refused"


CASES = {"kill": case_kill, "backup": case_backup, "second": case_second, "diskfull": case_diskfull,
         "data": case_data}


# -------------------------------------------------------------------------------- helpers

def proc_alive(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


def read_lr(run: Path):
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())["transfer"]["lr"]


def noise_image(path: Path, rng: random.Random) -> None:
    """A valid 48 px image of random pixels at ``path`` (its format from the suffix)."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def tf_import_seconds() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, capture_output=True)
    return time.perf_counter() - t0


def kind_order(kinds: list[str], n: int, rng: random.Random) -> list[str]:
    """``n`` kinds: rounds of every kind in a random order."""
    order: list[str] = []
    while len(order) < n:
        order += rng.sample(kinds, len(kinds))
    return order[:n]


def run_case(case: Case) -> dict:
    case.folder.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        outcome = CASES[case.kind](case)
    except Exception as e:  # noqa: BLE001 - a check that cannot even run is a finding
        case.problems.append(f"the check itself failed: {type(e).__name__}: {e}")
        outcome = "problem"
    return {"case": case.no, "kind": case.kind, "outcome": "problem" if case.problems else outcome,
            "detail": "; ".join(case.detail), "problems": case.problems, "stderr": case.stderr[-3:],
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/fault-fit")
    ap.add_argument("--snapshot", action="store_true", help="run the jobs from a git archive of HEAD")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        ap.error(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")

    from leafnet.console import import_tensorflow_quietly

    import_tensorflow_quietly()   # the checks load .keras files; TensorFlow's start-up lines say nothing here
    warnings.filterwarnings("ignore", message="Skipping variable loading")   # a .keras file's optimizer, unused
    out = Path(args.out).resolve()
    counts = out.parent / f".{out.name}-writes.json"
    data, duration, reference = kill_fit.prepare(out, args.snapshot, job=JOB, env={"FAULT_FIT_COUNT": str(counts)})
    ctx = Context(out, data, duration, reference, json.loads(counts.read_text()))
    counts.unlink()
    if "second" in kinds:
        ctx.tf_import = tf_import_seconds()
    print(f"writes of an uninterrupted job: {ctx.writes}"
          + (f"; TensorFlow import: {ctx.tf_import:.1f} s" if ctx.tf_import else ""), flush=True)

    rng = random.Random(args.seed)
    results = []
    for no, kind in enumerate(kind_order(kinds, args.cases, rng)):
        case = Case(no, kind, ctx, random.Random(rng.randrange(2**32)), out / f"case-{no:04d}" / "leaves"
                    if kind == "data" else data)
        r = run_case(case)
        results.append(r)
        print(f"case {no} {kind}: {r['outcome']} ({r['seconds']} s) {r['detail']}"
              + "".join(f"\n  PROBLEM {p}" for p in r["problems"]), flush=True)
        if not r["problems"]:
            shutil.rmtree(case.folder, ignore_errors=True)

    table = {k: dict(collections.Counter(r["outcome"] for r in results if r["kind"] == k)) for k in kinds}
    summary = {"cases": len(results), "seed": args.seed, "kinds": table,
               "outcomes": dict(collections.Counter(r["outcome"] for r in results)),
               "problems": [r for r in results if r["problems"]],
               "uninterrupted_seconds": round(duration, 1),
               "case_seconds": round(sum(r["seconds"] for r in results) / max(len(results), 1), 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{len(results)} cases: " + ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()))
    for k, v in table.items():
        print(f"  {k}: " + ", ".join(f"{o} {n}" for o, n in sorted(v.items())))
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
