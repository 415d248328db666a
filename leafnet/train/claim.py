"""Resume or refuse: a folder records what it holds, and a command that names it either
resumes that same thing or is refused with the first difference.

A run folder records its run in ``config.yaml`` (:func:`check_existing`); a search or a
cross-validation records itself in a JSON identity file (:func:`claim_folder`). Both go
through :func:`resume_or_refuse`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from leafnet import runlock
from leafnet.config import Config, config_from_dict, read_yaml
from leafnet.errors import ConfigError, LeafnetError
from leafnet.runs import RunDir, io_guard, write_json

# Keys that may differ between the stored config and the command that resumes it.
COSMETIC = {("run", "dir"), ("run", "verbose")}

# What a start writes before config.yaml, its last file: a folder holding nothing else is a
# start that was killed (or ran out of space) and is started again.
START_FILES = frozenset({"classes.json", "split.csv", "data_report.json", ".write-test", runlock.LOCK_NAME})


def stored_form(cfg: Config) -> dict:
    """The config as config.yaml stores it: ``run.dir`` empty, so it reproduces the run into a new folder."""
    d = cfg.to_dict()
    d["run"]["dir"] = None
    return d


def identity_config(cfg: Config) -> dict:
    """The config as stored, without the keys that may change between a run and its resume."""
    d = stored_form(cfg)
    d["run"]["verbose"] = None
    return d


def to_yaml(d: dict) -> str:
    """``d`` as YAML, keys in their order."""
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


def first_difference(a: dict, b: dict) -> str | None:
    """The first ``section.key`` of ``a`` (now) whose value ``b`` (the folder's) differs on, said; None if none."""
    for section in a:
        for key in a[section]:
            if (section, key) in COSMETIC:
                continue
            if a[section].get(key) != b.get(section, {}).get(key):
                return f"{section}.{key}: {b.get(section, {}).get(key)!r} in the folder, {a[section][key]!r} now"
    return None


def resume_or_refuse(path: Path, read: Callable[[Path], dict], refusal: Callable[[dict], LeafnetError | None],
                     write: Callable[[], None] | None = None) -> bool:
    """True when ``path`` records what this command asks for (resume).

    Args:
        path: the file that records what the folder holds.
        read: reads it (raising a one-line error when it cannot).
        refusal: the error to raise for what was read, None when it is what this command asks for.
        write: writes ``path`` when it is absent (a new start); None leaves that to later.

    Returns:
        True to resume, False for a new start.
    """
    if not path.exists():
        if write is not None:
            write()
        return False
    error = refusal(read(path))
    if error is not None:
        raise error
    return True


def check_existing(run: RunDir, cfg: Config) -> bool:
    """True when ``run`` holds this run already (resume); refuse a folder that holds another."""
    if not run.root.exists() or all(p.name == runlock.LOCK_NAME for p in run.root.iterdir()):
        return False
    if not run.config.exists() and is_unfinished_start(run):
        return False
    if not run.config.exists():
        raise LeafnetError(f"run folder {run.root} exists and is not a leafnet run; choose another --run-dir")

    def read(path: Path) -> dict:
        stored = read_yaml(path)
        try:
            config_from_dict(stored)
        except LeafnetError as e:
            raise LeafnetError(f"run folder {run.root} has an unreadable config.yaml ({e})") from None
        return stored

    def refusal(stored: dict) -> LeafnetError | None:
        diff = first_difference(stored_form(cfg), stored)
        return LeafnetError(f"run folder {run.root} holds a different run ({diff}); "
                            "use another --run-dir, or delete the folder to start over") if diff else None

    return resume_or_refuse(run.config, read, refusal)


def is_unfinished_start(run: RunDir) -> bool:
    """True when ``run`` holds only files a start writes before its config.yaml."""
    for p in run.root.iterdir():
        if p.name in ("plots", "backup") and p.is_dir() and not any(p.iterdir()):
            continue
        if p.name not in START_FILES and not (p.name.startswith(".") and ".tmp" in p.name):
            return False
    return True


def claim_folder(path: Path, identity: dict, what: str) -> bool:
    """Create ``path`` (a JSON identity file) or check it: True when resuming the same thing.

    A folder started with a different identity is refused, naming the first difference.
    """
    def read(path: Path) -> dict:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise LeafnetError(f"cannot read {path}: {e}") from None

    def refusal(stored: dict) -> LeafnetError | None:
        for key in identity:
            if stored.get(key) != identity[key]:
                detail = ""
                if key == "base_config":
                    detail = f" ({first_difference(identity[key], stored.get(key) or {})})"
                    key = "config"
                return ConfigError(f"{path.parent} holds a {what} with a different {key}{detail} than this command's; "
                                   f"use a new --run-dir (or the original settings to resume it)")
        return None

    return resume_or_refuse(path, read, refusal, write=lambda: io_guard(lambda: write_json(path, identity), str(path)))
