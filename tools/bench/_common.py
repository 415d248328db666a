"""Shared helpers of the benchmarks: alternate the sides, summarise, print a Markdown table.

The machines these run on are shared and noisy, so every benchmark runs its sides in
one process or one script, alternating (A B, B A, A B, ...), and reports medians, the
spread and the ratio to a reference side; never absolute numbers from separate runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Mapping, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def alternate(sides: Mapping[str, Callable[[int], float]], rounds: int) -> dict[str, list[float]]:
    """Call each side once per round, reversing the order every other round.

    Args:
        sides: name -> ``fn(round) -> value`` (a rate or a duration measured by the side).
        rounds: how many values each side gives.

    Returns:
        name -> the values, in round order.
    """
    names = list(sides)
    out: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in (names if r % 2 == 0 else names[::-1]):
            out[k].append(float(sides[k](r)))
    return out


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(q1, median, q3); for fewer than 4 values q1/q3 are the min/max."""
    v = sorted(values)
    if len(v) < 4:
        return v[0], statistics.median(v), v[-1]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], q[1], q[2]


def table(results: Mapping[str, Sequence[float]], reference: str, unit: str = "images/s",
          higher_is_better: bool = True, notes: Mapping[str, str] | None = None) -> str:
    """A Markdown table: side, median, spread, ratio to ``reference``.

    The ratio is always "how fast is this side relative to the reference" (> 1: faster),
    i.e. ``median / reference`` for rates and ``reference / median`` for durations.
    """
    ref = statistics.median(results[reference])
    spread = "IQR" if min(len(v) for v in results.values()) >= 4 else "min-max"
    lines = [f"| side | median {unit} | {spread} | n | ratio vs {reference} |", "|---|---|---|---|---|"]
    for name, vals in results.items():
        lo, med, hi = quartiles(vals)
        ratio = med / ref if higher_is_better else ref / med
        note = f" ({notes[name]})" if notes and name in notes else ""
        lines.append(f"| {name}{note} | {_fmt(med)} | {_fmt(lo)}-{_fmt(hi)} | {len(vals)} | {ratio:.2f} |")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def machine_line() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores, load average {load:.1f} at the start (shared machine: compare ratios, not rates)"


class Worker:
    """A benchmark side in its own process, kept alive between measurements.

    Some settings only take effect at process start (``LD_PRELOAD``, glibc's ``MALLOC_*``,
    ``TF_ENABLE_ONEDNN_OPTS``), and TensorFlow and PyTorch should not share one process's
    thread pools. So each side is a subprocess that builds and warms up its model once,
    then answers ``run N`` (N timed steps) on stdin with one JSON line; the parent
    alternates the workers, so only one computes at a time.

    Args:
        argv: the worker command (``[sys.executable, script, "--worker", ...]``).
        env: environment overrides for this worker (merged into ``os.environ``).
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None):
        self.name = name
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=full_env, bufsize=1)
        self.info = self._read()   # the worker's first line: what it built, after warming up

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"benchmark worker {self.name!r} exited (status {self.proc.wait()})")
            if line.startswith("{"):
                return json.loads(line)

    def run(self, steps: int) -> dict:
        """Time ``steps`` steps in the worker; returns its JSON answer (``images_per_s`` ...)."""
        self.proc.stdin.write(f"run {steps}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def serve(ready: dict, run_steps: Callable[[int], int]) -> None:
    """The worker side of :class:`Worker`: announce ``ready``, then time ``run N`` requests.

    Args:
        ready: what to report once built and warmed up.
        run_steps: ``fn(n)`` runs n steps (one ``fit``/``predict`` call, as users run
            them) and returns the number of images processed, or ``(images, step_seconds)``
            with each step's own time; the answer then also has ``step_images_per_s``,
            from the median step: the rate without the call's set-up and tear-down.
    """
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "run":
            continue
        n = int(parts[1])
        t0 = time.perf_counter()
        images = run_steps(n)
        dt = time.perf_counter() - t0
        steps = None
        if isinstance(images, tuple):
            images, steps = images
        answer = {"seconds": dt, "images": images, "images_per_s": images / dt}
        if steps:
            answer["step_images_per_s"] = images / len(steps) / statistics.median(steps)
        print(json.dumps(answer), flush=True)
