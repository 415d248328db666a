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
import random
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import kill_fit
from faults.case import Case, Context
from faults.hooks import JOB
from faults.kinds import CASES

KINDS = ("kill", "backup", "second", "diskfull", "data")


def tf_import_seconds() -> float:
    """Seconds a fresh Python takes to import TensorFlow (paces the second-job case)."""
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
    """Run one case; its outcome, detail, problems and the tail of its jobs' stderr."""
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
