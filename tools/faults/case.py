"""One fault case: its folder, its jobs, and the checks of a resume (equal to the uninterrupted
reference) and of a refusal (one line on stderr, no traceback, every final file readable)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import kill_fit
from kill_fit import check_artifacts, verify_complete, where

from faults.hooks import JOB


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
