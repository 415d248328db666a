"""From the data section of a config to train/val image sets, and the run folder's data files.

A new run scans the folder(s), splits, and writes ``classes.json``, ``split.csv`` and
``data_report.json``. A resumed run reads ``split.csv`` back, so it trains on exactly
the files it started with.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leafnet.config import DataConfig
from leafnet.data.scan import Scan, scan_folder
from leafnet.data.split import stratified_split
from leafnet.errors import DataError
from leafnet.runs import RunDir, read_csv, write_csv, write_json

SPLIT_HEADER = ["path", "class", "subset", "sha1"]


@dataclass
class SplitData:
    """The files of a run: class names in label order and one row per file."""

    classes: list[str]
    paths: list[str]
    labels: np.ndarray
    is_val: np.ndarray
    hashes: list[str]
    skipped: list[dict]

    def subset(self, val: bool) -> tuple[list[str], np.ndarray, list[str]]:
        idx = np.flatnonzero(self.is_val == val)
        return [self.paths[i] for i in idx], self.labels[idx], [self.hashes[i] for i in idx]

    def counts(self, val: bool) -> dict[str, int]:
        _, labels, _ = self.subset(val)
        return {c: int((labels == i).sum()) for i, c in enumerate(self.classes)}


def data_folder(cfg: DataConfig) -> str | None:
    """The folder to scan for ``data``, generating the demo leaves on first use."""
    if cfg.demo and not (cfg.data or cfg.train):
        from leafnet.data.demo import demo_folder

        return str(demo_folder())
    return cfg.data


def scan_and_split(cfg: DataConfig, seed: int, progress: bool = True) -> SplitData:
    """Scan the configured folder(s) and split them (see :func:`stratified_split`)."""
    folder = data_folder(cfg)
    if folder:
        scan = scan_folder(folder, progress=progress)
        is_val = stratified_split(scan.labels, scan.hashes, cfg.val_split, seed)
        return SplitData(scan.classes, scan.files, np.asarray(scan.labels), is_val, scan.hashes, scan.skipped)
    if not cfg.train:
        raise DataError("no data given: use --data DIR (one sub-folder per class), --train DIR --val DIR, or --demo")
    train: Scan = scan_folder(cfg.train, progress=progress)
    val: Scan = scan_folder(cfg.val, classes=train.classes, progress=progress)
    return SplitData(train.classes, train.files + val.files, np.asarray(train.labels + val.labels),
                     np.array([False] * len(train.files) + [True] * len(val.files)),
                     train.hashes + val.hashes, train.skipped + val.skipped)


def leaked_duplicates(split: SplitData) -> int:
    """Images whose byte-identical copy sits on the other side of the split."""
    train = {h for h, v in zip(split.hashes, split.is_val) if not v}
    return sum(1 for h, v in zip(split.hashes, split.is_val) if v and h in train)


def write_split(run: RunDir, split: SplitData) -> None:
    write_json(run.classes, split.classes)
    rows = [(p, split.classes[l], "val" if v else "train", h)
            for p, l, v, h in zip(split.paths, split.labels, split.is_val, split.hashes)]
    write_csv(run.split, SPLIT_HEADER, rows)
    report = {"found": len(split.paths) + len(split.skipped), "used": len(split.paths),
              "skipped": split.skipped,
              "classes": {c: split.counts(False)[c] + split.counts(True)[c] for c in split.classes},
              "train": split.counts(False), "val": split.counts(True),
              "duplicates_across_split": leaked_duplicates(split)}
    write_json(run.data_report, report)


def read_split(run: RunDir) -> SplitData:
    """Read ``classes.json`` and ``split.csv`` of an existing run; every file must still exist."""
    classes = run.read_classes()
    index = {c: i for i, c in enumerate(classes)}
    rows = read_csv(run.split)
    if any(set(SPLIT_HEADER) - set(r) for r in rows[:1]):
        raise DataError(f"{run.split} is not a leafnet split file (columns {', '.join(SPLIT_HEADER)} expected)")
    unknown = sorted({r["class"] for r in rows} - set(index))
    if unknown:
        raise DataError(f"{run.split} names class(es) that {run.classes} lacks: {', '.join(map(repr, unknown[:5]))}")
    missing = [r["path"] for r in rows if not os.path.exists(r["path"])]
    if missing:
        raise DataError(f"{len(missing)} file(s) of {run.split} no longer exist (first: {missing[0]}); "
                        "the run cannot resume on other data; use a new --run-dir")
    return SplitData(classes, [r["path"] for r in rows], np.array([index[r["class"]] for r in rows]),
                     np.array([r["subset"] == "val" for r in rows]), [r["sha1"] for r in rows], [])


def summarize(split: SplitData) -> str:
    n_train, n_val = int((~split.is_val).sum()), int(split.is_val.sum())
    lines = [f"data: {len(split.classes)} classes, {n_train} train / {n_val} val images"
             + (f", {len(split.skipped)} file(s) skipped" if split.skipped else "")]
    reasons: dict[str, int] = {}
    for s in split.skipped:
        reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:8]:
        lines.append(f"  skipped {n}: {reason}")
    leaks = leaked_duplicates(split)
    if leaks:
        lines.append(f"  warning: {leaks} val image(s) have an identical copy in train (leakage)")
    return "\n".join(lines)


def relative_to_cwd(path: str | os.PathLike) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def split_fingerprint(split) -> str:
    """Identifies a scan and split: class names, files, contents and sides."""
    h = hashlib.sha1("|".join(split.classes).encode())
    for p, label, val, sha in zip(split.paths, split.labels, split.is_val, split.hashes):
        h.update(f"{p}\0{int(label)}\0{int(val)}\0{sha}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()
