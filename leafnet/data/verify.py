"""Before a run resumes: are the files on disk still the ones its ``split.csv`` recorded?

A run resumed on other data (two class folders swapped, images overwritten after a kill)
would otherwise train on it without a word. Each row's file is compared with what the scan
recorded: its size, mtime and inode first (one ``stat``), its sha1 where they differ or were
not recorded (a ``split.csv`` without those columns: every file is hashed). A row that
points outside the run's data folder(s) is refused before anything is opened. Files added
to the folders since the split are counted, not used: the run goes on with its own files.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from leafnet.config import DataConfig
from leafnet.data.files import FileStat, UnreadableFile, file_problem, file_stat, hash_file
from leafnet.errors import DataError
from leafnet.runs import Run, RunDir, read_split_rows

CHANGED = "content differs from split.csv"


def data_roots(cfg: DataConfig, generate: bool = True) -> list[str]:
    """The folders a run's files come from (``data``, or ``train`` and ``val``; ``test``);
    ``generate=False``: the demo folder's path without generating the demo leaves."""
    from leafnet.datasets.demo import demo_path
    from leafnet.data.prepare import data_folder

    demo_only = cfg.demo and not (cfg.data or cfg.train)
    folder = str(demo_path()) if demo_only and not generate else data_folder(cfg)
    roots = [folder] if folder else [cfg.train, cfg.val]
    return [os.path.abspath(r) for r in roots + [cfg.test] if r]


def _inside(path: str, roots: Sequence[str]) -> bool:
    p = os.path.normpath(os.path.abspath(path))
    return any(os.path.commonpath([p, r]) == r for r in roots)


def _recorded(row: dict) -> FileStat | None:
    try:
        return FileStat(int(row["size"]), int(row["mtime_ns"]), int(row["inode"]))
    except (KeyError, TypeError, ValueError):
        return None


def _hash_reason(path: str, sha1: str) -> str | None:
    try:
        digest, _ = hash_file(path)
    except UnreadableFile as e:
        return e.reason
    return None if digest == sha1 else CHANGED


def _problems(rows: list[dict]) -> list[tuple[str, str]]:
    """``(path, why)`` for each row whose file is gone or is not the file that was split."""
    problems: dict[int, str] = {}
    to_hash = []
    for i, row in enumerate(rows):
        path = row["path"]
        reason = file_problem(path)
        if reason:
            problems[i] = "missing" if reason.startswith(("broken symbolic link", "cannot read file: No such")) \
                else reason
        else:
            try:
                same = _recorded(row) == file_stat(path)
            except OSError:
                same = False       # gone since: hashing says why
            if not same:
                to_hash.append(i)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for i, reason in zip(to_hash, pool.map(lambda i: _hash_reason(rows[i]["path"], rows[i]["sha1"]), to_hash)):
            if reason:
                problems[i] = reason
    return [(rows[i]["path"], problems[i]) for i in sorted(problems)]


def _known_paths(run: RunDir, rows: list[dict]) -> set[str]:
    """The files the run knew at its start: its rows and the files its scan skipped."""
    known = {r["path"] for r in rows}
    try:
        report = json.loads(run.data_report.read_text(encoding="utf-8"))
        known.update(s["path"] for s in report.get("skipped", []) if isinstance(s, dict) and "path" in s)
    except (OSError, ValueError, AttributeError):
        pass
    return known


def new_files(run: RunDir, rows: list[dict], roots: Sequence[str], labelled: bool) -> int:
    """How many image files under ``roots`` the run has never seen (nothing is read)."""
    from leafnet.data.scan import list_candidates

    known = _known_paths(run, rows)
    found = set()
    for root in roots:
        if os.path.isdir(root):
            found.update(list_candidates(root, labelled=labelled)[0])
    return len(found - known)


def verify_resume(run: RunDir, roots: Sequence[str], labelled: bool = True) -> int:
    """Refuse to resume ``run`` when its files changed; return how many files are new.

    Args:
        run: the run folder.
        roots: the run's data folders (see :func:`data_roots`).
        labelled: the folders hold class folders (``fit``), or images anywhere (``pretext``).

    Raises:
        DataError: a row outside ``roots``, or a file missing, unreadable or not the same
            content as when the run started; one line naming it.
    """
    rows = read_split_rows(run.split)
    if not rows or any(k not in rows[0] for k in ("path", "sha1")):
        return 0         # not a split file: read_split says so
    roots = refuse_outside(run, rows, roots)
    problems = _problems(rows)
    if problems:
        path, why = problems[0]
        more = f" and {len(problems) - 1} other file(s)" if len(problems) > 1 else ""
        raise DataError(f"data changed since this run started: {path} ({why}){more}; "
                        f"restore {'them' if more else 'it'} or start a new run with another --run-dir")
    return new_files(run, rows, roots, labelled)


def refuse_outside(run: RunDir, rows: list[dict], roots: Sequence[str]) -> list[str]:
    """``roots`` normalised, after refusing the first row of ``rows`` that lies outside them."""
    roots = [os.path.normpath(os.path.abspath(r)) for r in roots]
    for n, row in enumerate(rows, start=1):
        if not _inside(row["path"], roots):
            raise DataError(f"{run.split}, row {n}: {row['path']} lies outside the run's data folder "
                            f"({', '.join(roots)}); refusing to read it; start a new run with another --run-dir")
    return roots


def check_rows(run: RunDir) -> None:
    """Refuse ``split.csv`` rows outside the data folders of the run's own ``config.yaml``
    (before ``evaluate`` or ``export`` opens any of them)."""
    from leafnet.config import config_from_dict

    rows = Run(run.root).split_rows()
    if rows and "path" in rows[0]:
        refuse_outside(run, rows, data_roots(config_from_dict(run.read_config()).data, generate=False))


def new_files_note(n: int) -> str:
    return f"note: {n} new file(s) are not in this run; start a new run to use them"
