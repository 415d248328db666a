"""The fault kinds: each ``case_KIND(case)`` injects its fault, checks what followed and returns
the outcome it expected (``resumed`` or ``refused``); problems go to ``case.problems``."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

from kill_fit import where

from faults.case import Case, Result


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
