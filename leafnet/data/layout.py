"""Folders that are already split on disk: ``root/train/<class>``, ``root/val/<class>``,
``root/test/<class>`` (Ultralytics, ImageNet and many Kaggle sets).

Read as class folders, such a root would give three classes named train, val and test.
A root whose visible sub-folders are all split names, ``train`` among them, each holding
sub-folders, is taken as that split instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from leafnet import console

if TYPE_CHECKING:
    from leafnet.config import DataConfig

SPLIT_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}


def _visible_dirs(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return [Path(e.path) for e in entries if not e.name.startswith((".", "_")) and e.is_dir()]


def split_layout(root: str | os.PathLike) -> dict[str, str] | None:
    """``{"train": path, "val": path, "test": path}`` (val and test when present) when
    ``root`` is laid out as split folders; None when it is a folder of class folders."""
    dirs = _visible_dirs(Path(root))
    found: dict[str, str] = {}
    for d in dirs:
        role = next((r for r, names in SPLIT_NAMES.items() if d.name.lower() in names), None)
        if role is None or role in found or not _visible_dirs(d):
            return None
        found[role] = str(d)
    if "train" not in found or len(found) < 2:
        return None
    return {role: found[role] for role in SPLIT_NAMES if role in found}


def describe_layout(root: str | os.PathLike, layout: dict[str, str]) -> str:
    """One line for the console: what was detected and how it is used."""
    names = "/ ".join(Path(p).name for p in layout.values()) + "/"
    uses = ["train" + ("" if "val" in layout else " (split into train and val)")]
    if "val" in layout:
        uses.append("val")
    if "test" in layout:
        uses.append("test (held out: never used for training or model selection)")
    return f"{root} is laid out as {names}: using {', '.join(uses)}"


def use_split_layout(data: DataConfig, verbose: bool = True) -> None:
    """``data.data`` laid out as split folders becomes ``data.train`` / ``data.val`` /
    ``data.test`` (said on the console): its split names are not classes."""
    layout = split_layout(data.data) if data.data else None
    if layout is None:
        return
    if verbose:
        console.note(describe_layout(data.data, layout))
    if "val" in layout:
        data.data, data.train, data.val = None, layout["train"], layout["val"]
    else:
        data.data = layout["train"]
    if "test" in layout and not data.test:
        data.test = layout["test"]
