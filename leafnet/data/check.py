"""``leafnet data check DIR``: the scan alone, for a person to read before training."""

from __future__ import annotations

import collections

from leafnet import console
from leafnet.data.scan import folder_reasons, scan_folder
from leafnet.data.split import stratified_split
from leafnet.runs import write_json


def check_folder(folder: str, val_split: float | None = None, seed: int | None = None,
                 json_out: str | None = None) -> int:
    """Print class counts, skipped files, duplicate images and, for a split, leakage.

    Returns:
        0 when the folder can be trained on, 1 when it cannot (empty class, one class).
    """
    from leafnet.config import DataConfig, RunConfig
    from leafnet.data.layout import describe_layout, split_layout

    layout = split_layout(folder)
    if layout:
        console.note(f"{describe_layout(folder, layout)}; checking each")
        codes = [check_folder(path, val_split=val_split, seed=seed,
                              json_out=f"{json_out}.{role}.json" if json_out else None)
                 for role, path in layout.items()]
        return max(codes)
    scan = scan_folder(folder, progress=True, strict=False)
    counts = scan.counts()
    width = max([len(c) for c in counts] + [5])
    console.info(f"\n{scan.root}: {len(scan.files)} usable images in {len(counts)} classes, "
                 f"{len(scan.skipped)} file(s) skipped")
    unreadable = folder_reasons(scan)
    for name, n in counts.items():
        why = f" ({unreadable[name]})" if name in unreadable else ""
        console.info(f"  {name:{width}}  {n:6d}" + (f"  <- no usable image{why}" if n == 0 else why))
    if scan.skipped:
        reasons = collections.Counter(s["reason"] for s in scan.skipped)
        console.info("skipped:")
        for reason, n in reasons.most_common():
            console.info(f"  {n:6d}  {reason}")
        for s in scan.skipped[:20]:
            console.info(f"    {s['path']}: {s['reason']}")
        if len(scan.skipped) > 20:
            console.info(f"    ... and {len(scan.skipped) - 20} more")
    groups = scan.duplicates()
    is_val = stratified_split(scan.labels, scan.hashes, val_split or DataConfig().val_split,
                              RunConfig().seed if seed is None else seed)
    conflicts = [g for g in groups if len({scan.labels[i] for i in g}) > 1]
    split_sides = [g for g in groups if len({bool(is_val[i]) for i in g}) > 1]
    console.info(f"duplicates: {len(groups)} group(s) of byte-identical images "
                 f"({sum(len(g) for g in groups) - len(groups)} redundant file(s))")
    for g in groups[:10]:
        names = ", ".join(scan.files[i] for i in g[:4]) + (" ..." if len(g) > 4 else "")
        console.info(f"  {len(g)} copies: {names}")
    if conflicts:
        console.info(f"  warning: {len(conflicts)} duplicate group(s) span several classes (label conflicts)")
    console.info("leakage: the split keeps every copy of an image on one side "
                 f"({len(split_sides)} group(s) across train/val)")
    report = {**scan.report(), "duplicates": [[scan.files[i] for i in g] for g in groups],
              "label_conflicts": [[scan.files[i] for i in g] for g in conflicts],
              "train": int((~is_val).sum()), "val": int(is_val.sum())}
    if json_out:
        write_json(json_out, report)
        console.info(f"report written to {json_out}")
    usable = len(counts) >= 2 and all(counts.values())
    if not usable:
        console.info("this folder cannot be trained on: "
                     "every class needs at least one image and there must be two classes")
    return 0 if usable else 1
