"""``leafnet cv``: stratified k-fold cross-validation of any fit config.

The folder is scanned once and cut into K folds with scikit-learn's
``StratifiedGroupKFold``: every class is spread evenly over the folds, and byte-identical
copies of an image (grouped by content hash) stay in one fold, so no image is validated
on while a copy of it trains. Fold k trains on the other K-1 folds in ``CV/fold-k/``
(a normal run folder); ``cv_summary.json`` holds every fold's metrics and their mean and
standard deviation. Rerunning the same command resumes (finished folds are kept).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from leafnet import console
from leafnet import runlock
from leafnet.config import Config
from leafnet.data.prepare import split_fingerprint
from leafnet.errors import ConfigError, DataError
from leafnet.runs import default_run_dir, io_guard, write_json
from leafnet.train.claim import claim_folder, identity_config

METRICS = ("val_accuracy", "val_loss", "mean_class_accuracy")


def fold_masks(labels, hashes, folds: int, seed: int) -> list[np.ndarray]:
    """One boolean validation mask per fold (a partition of the files)."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels)
    _, groups = np.unique(np.asarray(hashes), return_inverse=True)
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min()) if len(labels) else 0
    if smallest < folds:
        raise DataError(f"{folds}-fold cross-validation needs at least {folds} images in every class; "
                        f"the smallest class has {smallest}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    masks = []
    for _, val_idx in splitter.split(np.zeros(len(labels)), labels, groups):
        mask = np.zeros(len(labels), dtype=bool)
        mask[val_idx] = True
        masks.append(mask)
    return masks


def cross_validate(config: Config | dict | str | os.PathLike | None = None, *, folds: int = 5,
                   **flags: Any) -> dict:
    """Train one run per fold; return (and write) the summary.

    Args:
        config: a fit config (Config, nested dict or YAML path); ``run.dir`` is the cv folder.
        folds: K (>= 2).
        **flags: dotted config overrides.

    Returns:
        ``{"folds": [{"fold", "run", metrics...}], "mean": {...}, "std": {...}}``; the std is
        the sample standard deviation over folds (ddof=1).
    """
    from leafnet.train.fit import fit
    from leafnet.train.lifecycle import CLASSIFIER, as_config, require_data

    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"--folds must be an integer >= 2; received {folds!r}")
    base = as_config(config, **flags)
    from leafnet.data.layout import use_split_layout

    use_split_layout(base.data, verbose=bool(base.run.verbose))
    require_data(base, "cv")
    if base.data.train or base.data.val:
        raise ConfigError("cross-validation makes its own splits: give one folder with --data, not --train/--val")
    verbose = base.run.verbose
    root = Path(base.run.dir).expanduser().resolve() if base.run.dir else \
        default_run_dir(f"cv-{base.model.backbone}").resolve()
    with runlock.hold(root):   # each fold's fit holds its own folder inside it
        scan = CLASSIFIER.scan(base, progress=bool(verbose))
        masks = fold_masks(scan.labels, scan.hashes, folds, base.run.seed)
        claim_folder(root / "cv.json", {"folds": folds, "base_config": identity_config(base),
                                        "data": split_fingerprint(scan)}, "cross-validation")
        rows = []
        for k, mask in enumerate(masks, 1):
            cfg = copy.deepcopy(base)
            cfg.run.dir = str(root / f"fold-{k}")
            split = dataclasses.replace(scan, is_val=mask)
            if verbose:
                console.info(f"fold {k}/{folds}: {int((~mask).sum())} train, {int(mask.sum())} val images -> {cfg.run.dir}")
            m = fit(cfg, split=split).metrics
            rows.append({"fold": k, "run": cfg.run.dir, **{name: m.get(name) for name in METRICS},
                         "val_images": m.get("val_images"), "epochs": m.get("epochs")})
        summary = {"folds": rows, "k": folds,
                   "mean": {n: float(np.mean([r[n] for r in rows])) for n in METRICS},
                   "std": {n: float(np.std([r[n] for r in rows], ddof=1)) for n in METRICS}}
        io_guard(lambda: write_json(root / "cv_summary.json", summary), str(root / "cv_summary.json"))
    if verbose:
        console.info(format_summary(summary))
        console.info(f"summary: {root / 'cv_summary.json'}")
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"{'fold':>4}  " + "  ".join(f"{n:>19}" for n in METRICS)]
    for r in summary["folds"]:
        lines.append(f"{r['fold']:4d}  " + "  ".join(f"{r[n]:19.4f}" for n in METRICS))
    lines.append(f"{'mean':>4}  " + "  ".join(f"{summary['mean'][n]:19.4f}" for n in METRICS))
    lines.append(f"{'std':>4}  " + "  ".join(
        f"{summary['std'][n]:19.4f}" if math.isfinite(summary["std"][n]) else f"{'-':>19}" for n in METRICS))
    return "\n".join(lines)
