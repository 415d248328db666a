"""From the data section of a config to train/val image sets, and the run folder's data files.

A new run scans the folder(s), splits, and writes ``classes.json``, ``split.csv`` and
``data_report.json``. A resumed run reads ``split.csv`` back, so it trains on exactly
the files it started with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from leafnet.config import DataConfig
from leafnet.data.scan import Scan, scan_folder
from leafnet.data.split import stratified_split
from leafnet.errors import DataError
from leafnet.runs import SPLIT_HEADER, Run, RunDir, write_csv, write_json

STAT_COLUMNS = ["size", "mtime_ns", "inode"]   # as each file was hashed; a resume compares them first


@dataclass
class SplitData:
    """The files of a run: class names in label order and one row per file, each in the
    train, val or (held out, never trained or selected on) test subset."""

    classes: list[str]
    paths: list[str]
    labels: np.ndarray
    is_val: np.ndarray
    hashes: list[str]
    skipped: list[dict]
    is_test: np.ndarray | None = None   # None: no test subset
    stats: list | None = None           # FileStat per file as it was hashed; None: unknown

    def names(self) -> np.ndarray:
        """The subset of each file: "train", "val" or "test"."""
        names = np.where(np.asarray(self.is_val, dtype=bool), "val", "train").astype(object)
        if self.is_test is not None:
            names[np.asarray(self.is_test, dtype=bool)] = "test"
        return names

    def rows(self, name: str) -> tuple[list[str], np.ndarray, list[str]]:
        """Paths, labels and hashes of the subset ``name`` (train, val or test)."""
        idx = np.flatnonzero(self.names() == name)
        return [self.paths[i] for i in idx], self.labels[idx], [self.hashes[i] for i in idx]

    def subset(self, val: bool) -> tuple[list[str], np.ndarray, list[str]]:
        return self.rows("val" if val else "train")

    def counts(self, name: str) -> dict[str, int]:
        _, labels, _ = self.rows(name)
        return {c: int((labels == i).sum()) for i, c in enumerate(self.classes)}

    def with_test(self, test: Scan) -> "SplitData":
        """This split plus the held-out images of ``test`` (scanned with this split's classes)."""
        n = len(self.paths)
        return SplitData(self.classes, self.paths + test.files, np.concatenate([self.labels, test.labels]).astype(np.int64),
                         np.concatenate([self.is_val, np.zeros(len(test.files), bool)]), self.hashes + test.hashes,
                         self.skipped + test.skipped,
                         np.concatenate([np.zeros(n, bool) if self.is_test is None else self.is_test,
                                         np.ones(len(test.files), bool)]),
                         self.stats + test.stats if self.stats is not None and len(test.stats) == len(test.files) else None)


def data_folder(cfg: DataConfig) -> str | None:
    """The folder to scan for ``data``, generating the demo leaves on first use."""
    if cfg.demo and not (cfg.data or cfg.train):
        from leafnet.datasets.demo import demo_folder

        return str(demo_folder())
    return cfg.data


def scan_and_split(cfg: DataConfig, seed: int, progress: bool = True) -> SplitData:
    """Scan the configured folder(s) and split them (see :func:`stratified_split`); a
    ``test`` folder becomes the held-out subset."""
    folder = data_folder(cfg)
    if folder:
        scan = scan_folder(folder, progress=progress)
        is_val = stratified_split(scan.labels, scan.hashes, cfg.val_split, seed)
        split = SplitData(scan.classes, scan.files, np.asarray(scan.labels), is_val, scan.hashes, scan.skipped,
                          stats=scan.stats)
    elif cfg.train:
        train: Scan = scan_folder(cfg.train, progress=progress)
        val: Scan = scan_folder(cfg.val, classes=train.classes, progress=progress)
        split = SplitData(train.classes, train.files + val.files, np.asarray(train.labels + val.labels),
                          np.array([False] * len(train.files) + [True] * len(val.files)),
                          train.hashes + val.hashes, train.skipped + val.skipped, stats=train.stats + val.stats)
    else:
        raise DataError("no data given: use --data DIR (one sub-folder per class), --train DIR --val DIR, or --demo")
    if cfg.test:
        split = split.with_test(scan_folder(cfg.test, classes=split.classes, progress=progress))
    return split


def leaked_duplicates(split: SplitData) -> int:
    """Images whose byte-identical copy sits on the other side of the split."""
    names = split.names()
    train = {h for h, name in zip(split.hashes, names) if name == "train"}
    return sum(1 for h, name in zip(split.hashes, names) if name != "train" and h in train)


def write_split(run: RunDir, split: SplitData) -> None:
    write_json(run.classes, split.classes)
    stats = split.stats if split.stats is not None and len(split.stats) == len(split.paths) else None
    rows = [(p, split.classes[l], name, h, *(stats[i] if stats else ("", "", "")))
            for i, (p, l, name, h) in enumerate(zip(split.paths, split.labels, split.names(), split.hashes))]
    write_csv(run.split, SPLIT_HEADER + STAT_COLUMNS, rows)
    subsets = ("train", "val", "test") if split.is_test is not None else ("train", "val")
    counts = {name: split.counts(name) for name in subsets}
    report = {"found": len(split.paths) + len(split.skipped), "used": len(split.paths),
              "skipped": split.skipped,
              "classes": {c: sum(counts[name][c] for name in subsets) for c in split.classes},
              **counts, "duplicates_across_split": leaked_duplicates(split)}
    write_json(run.data_report, report)


def read_split(run: RunDir) -> SplitData:
    """Read ``classes.json`` and ``split.csv`` of an existing run; every file must still exist."""
    classes = run.read_classes()
    index = {c: i for i, c in enumerate(classes)}
    rows = Run(run.root).checked_split_rows()
    is_test = np.array([r["subset"] == "test" for r in rows])
    return SplitData(classes, [r["path"] for r in rows], np.array([index[r["class"]] for r in rows]),
                     np.array([r["subset"] == "val" for r in rows]), [r["sha1"] for r in rows], [],
                     is_test if is_test.any() else None)


def summarize(split: SplitData) -> str:
    names = split.names()
    held_out = f" / {int((names == 'test').sum())} test (held out)" if split.is_test is not None else ""
    lines = [f"data: {len(split.classes)} classes, {int((names == 'train').sum())} train / "
             f"{int((names == 'val').sum())} val{held_out} images"
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


def split_fingerprint(split) -> str:
    """Identifies a scan and split: class names, files, contents and sides."""
    h = hashlib.sha1("|".join(split.classes).encode())
    side = {"train": 0, "val": 1, "test": 2}
    for p, label, name, sha in zip(split.paths, split.labels, split.names(), split.hashes):
        h.update(f"{p}\0{int(label)}\0{side[name]}\0{sha}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()
