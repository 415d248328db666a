"""Benchmark: peak resident memory of a ``leafnet fit`` run (a subprocess, as a user runs it).

Runs ``leafnet fit`` with the given arguments into a fresh run folder under /tmp and
reports the child's peak resident set size (``getrusage(RUSAGE_CHILDREN).ru_maxrss``),
its wall time and the size of the decoded training images it kept in memory.

    python tools/bench/rss.py                                   # demo recipe, 3 + 1 epochs
    python tools/bench/rss.py -- --demo --backbone b0 --weights none --image-size 128 --epochs 1 --finetune-epochs 0
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ["--config", str(ROOT / "configs" / "demo.yaml"), "--epochs", "3", "--finetune-epochs", "1"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fit_args", nargs="*", help="arguments of `leafnet fit` (after --); default: the demo, 3 + 1 epochs")
    args = p.parse_args(argv)
    fit_args = args.fit_args or DEFAULT
    tmp = Path(tempfile.mkdtemp(prefix="leafnet-bench-rss-"))
    cmd = [sys.executable, "-m", "leafnet.cli", "fit", *fit_args, "--run-dir", str(tmp / "run")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode:
        print(proc.stdout[-2000:])
        print(f"leafnet fit failed (status {proc.returncode})")
        return proc.returncode
    shown = " ".join(Path(a).name if a.startswith("/") else a for a in fit_args)
    print(f"`leafnet fit {' '.join(fit_args)}`; {machine_line()}")
    print()
    print("| run | peak resident memory | wall time |")
    print("|---|---|---|")
    print(f"| leafnet fit {shown} | {peak_kb / 1024:,.0f} MB | {wall:.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
