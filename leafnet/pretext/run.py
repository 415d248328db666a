"""``leafnet.pretext.pretext``: from unlabelled images to a pretext run folder with ``backbone.keras``.

The run is a normal leafnet run folder (config.yaml, classes.json with the task's
classes, split.csv, history.csv, best/model.keras, metrics.json, plots, backup/ for
resuming) trained by :class:`leafnet.train.trainer.Trainer`, plus:

* ``pretext.json``: the task, the backbone's registry name and the image size;
* ``backbone.keras``: the backbone alone (see :func:`leafnet.models.weights.save_backbone`),
  what ``leafnet fit --weights RUN`` transfers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from leafnet import runlock
from leafnet.config import Config, has_data_source
from leafnet.errors import DataError, LeafnetError
from leafnet.pretext.task import PretextTask, get_task
from leafnet.runs import Run, RunDir, default_run_dir, io_guard, read_split_rows, write_json, write_text
from leafnet.train.trainer import Trainer

PRETEXT_FILE = "pretext.json"


def _scan_split(cfg: Config, progress: bool):
    """Scan the configured folder(s) for images, labels ignored, and split them."""
    from leafnet.data.prepare import SplitData, data_folder
    from leafnet.data.scan import scan_images
    from leafnet.data.split import stratified_split

    folder = data_folder(cfg.data)
    if folder:
        scan = scan_images(folder, progress=progress)
        is_val = stratified_split(scan.labels, scan.hashes, cfg.data.val_split, cfg.run.seed)
        return SplitData(scan.classes, scan.files, np.asarray(scan.labels), is_val, scan.hashes, scan.skipped,
                         stats=scan.stats)
    train, val = scan_images(cfg.data.train, progress=progress), scan_images(cfg.data.val, progress=progress)
    return SplitData(train.classes, train.files + val.files, np.zeros(len(train.files) + len(val.files), dtype=np.int64),
                     np.array([False] * len(train.files) + [True] * len(val.files)),
                     train.hashes + val.hashes, train.skipped + val.skipped, stats=train.stats + val.stats)


def _read_split(run: RunDir):
    from leafnet.data.prepare import SplitData

    rows = read_split_rows(run.split)
    missing = [r["path"] for r in rows if not os.path.exists(r["path"])]
    if missing:
        raise DataError(f"{len(missing)} file(s) of {run.split} no longer exist (first: {missing[0]}); "
                        "the run cannot resume on other data; use a new --run-dir")
    return SplitData(["image"], [r["path"] for r in rows], np.zeros(len(rows), dtype=np.int64),
                     np.array([r["subset"] == "val" for r in rows]), [r["sha1"] for r in rows], [])


def _check_task(run: RunDir, task: PretextTask) -> None:
    path = run.root / PRETEXT_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8")).get("task")
    except (OSError, ValueError):
        raise LeafnetError(f"run folder {run.root} is not a pretext run (no readable {PRETEXT_FILE}); "
                           "use another --run-dir") from None
    if stored != task.name:
        raise LeafnetError(f"run folder {run.root} holds a {stored} pretext run, not {task.name}; "
                           "use another --run-dir")


class PretextTrainer(Trainer):
    """The trainer, telling the pretext set which epoch it draws before each epoch."""

    def train_dataset(self, phase, phase_epoch, epoch):
        self.train.epoch = epoch  # the squares of an epoch are a function of (seed, epoch) only
        return super().train_dataset(phase, phase_epoch, epoch)


def _summary(split) -> str:
    n_val = int(split.is_val.sum())
    return (f"data: {len(split.paths) - n_val} train / {n_val} val images (labels ignored)"
            + (f", {len(split.skipped)} file(s) skipped" if split.skipped else ""))


def pretext(config: Config | dict | str | os.PathLike | None = None, task: str | PretextTask = "rotation",
            **flags: Any) -> Run:
    """Pre-train a backbone on a pretext task over unlabelled images.

    Args:
        config: a :class:`Config`, a nested dict, or a YAML path (the same config as
            :func:`leafnet.fit`); ``data`` may be a flat folder of images, and class
            sub-folders, if any, are ignored.
        task: ``rotation`` or ``perturbation`` (or a :class:`PretextTask`).
        **flags: dotted overrides, e.g. ``**{"model.backbone": "alexnet"}``.

    Returns:
        The :class:`Run`; ``run.root / "backbone.keras"`` is the pre-trained backbone.

    Example:
        >>> run = pretext({"data": {"data": "photos/"}, "model": {"backbone": "simple-cnn", "weights": "none"}},
        ...               task="perturbation")
        >>> leafnet.fit({"data": {"data": "leaves/"}, "model": {"backbone": "simple-cnn",
        ...              "weights": str(run.root)}})
    """
    from leafnet.train.fit import as_config, refuse_without_validation, resolve_config

    task = get_task(task)
    cfg = as_config(config, **flags)
    from leafnet.train.distribute import refuse_multiworker

    refuse_multiworker(cfg, "pretext")
    if not has_data_source(cfg):
        raise DataError("no data given: use --data DIR (any folder of images; labels are ignored), "
                        "--train DIR --val DIR, or --demo")
    refuse_without_validation(cfg, "a pretext run keeps its best epoch")
    notes = task.adapt_config(cfg)
    if cfg.model.weights is None:
        cfg.model.weights = "none"   # a pretext task pre-trains from scratch unless told otherwise
    cfg, spec, size = resolve_config(cfg)

    root = Path(cfg.run.dir).expanduser() if cfg.run.dir else default_run_dir(f"{spec.name}-{task.name}")
    with runlock.hold(root):
        return _pretext(cfg, task, spec, size, notes, RunDir(root))


def _pretext(cfg: Config, task: PretextTask, spec, size: int, notes: list[str], run: RunDir) -> Run:
    """``pretext`` in its run folder, which this process holds."""
    from leafnet.train.fit import build_model, check_existing, finish_run, stored_form, to_yaml

    verbose = cfg.run.verbose
    resuming = check_existing(run, cfg)
    if resuming:
        _check_task(run, task)
    backbone_file = run.root / "backbone.keras"
    if resuming and run.metrics.exists() and backbone_file.exists():
        if verbose:
            print(f"pretext run {run.root} is already complete; backbone: {backbone_file}")
        return Run(run.root)

    from leafnet.data.pipeline import ImageSet
    from leafnet.data.prepare import write_split
    from leafnet.models.weights import save_backbone
    from leafnet.pretext.datasets import PretextSet
    from leafnet.train.trainer import plan_phases

    plan_phases(cfg)
    if resuming:
        from leafnet.data.verify import data_roots, new_files_note, verify_resume

        run.clean_temporaries()
        added = verify_resume(run, data_roots(cfg.data), labelled=False)
        split = _read_split(run)
        if added and verbose:
            print(new_files_note(added))
    else:
        split = _scan_split(cfg, progress=bool(verbose))
    train_paths, _, train_hashes = split.subset(val=False)
    val_paths, _, val_hashes = split.subset(val=True)
    if not val_paths:
        raise DataError("the validation set is empty: use more images or a larger --val-split")
    model = build_model(cfg, spec, task.num_classes)
    info = {"task": task.name, "classes": list(task.classes), "backbone": spec.name, "image_size": size,
            "weights": cfg.model.weights, "feature_layer": cfg.model.feature_layer}
    if not resuming:
        run.create()
        io_guard(lambda: write_split(run, split), f"the data files in {run.root}")
        io_guard(lambda: write_json(run.classes, list(task.classes)), str(run.classes))
        io_guard(lambda: write_json(run.root / PRETEXT_FILE, info), PRETEXT_FILE)
        io_guard(lambda: write_text(run.config, f"# leafnet pretext run config (task: {task.name}); "
                                    f"`leafnet pretext --task {task.name} --config THIS` reproduces the run\n"
                                    + to_yaml(stored_form(cfg))), str(run.config))
    if verbose:
        print(f"pretext task {task.name}: {task.num_classes} classes ({', '.join(task.classes)}); "
              f"run folder: {run.root}")
        for note in notes:
            print(f"  {note}")
        print(_summary(split))
    base_train = ImageSet(train_paths, np.zeros(len(train_paths)), 1, size)
    base_val = ImageSet(val_paths, np.zeros(len(val_paths)), 1, size)
    mode = base_train.cache(cfg.data.cache, run.cache, train_hashes, progress=bool(verbose), label="train")
    base_val.cache(mode, run.cache, val_hashes, progress=bool(verbose), label="val")
    train = PretextSet(base_train, task, cfg.run.seed, epoch=0)
    val = PretextSet(base_val, task, cfg.run.seed, epoch=None)

    trainer = PretextTrainer(cfg, run, spec, model, train, val, from_scratch=cfg.model.weights == "none")
    t0 = time.perf_counter()
    history = trainer.fit()
    # backbone.keras before metrics.json: a run with metrics.json is complete.
    io_guard(lambda: save_backbone(model, spec, size, backbone_file,
                                   info={"pretext_task": task.name, "weights": cfg.model.weights}), str(backbone_file))
    finish_run(run, cfg, model, spec, list(task.classes), train, val, history, time.perf_counter() - t0)
    result = Run(run.root)
    if verbose:
        m = result.metrics
        print(f"pretext val_accuracy {m['val_accuracy']:.4f} (chance {1 / task.num_classes:.2f})  "
              f"val_loss {m['val_loss']:.4f}")
        print(f"backbone: {backbone_file}   (transfer it with: leafnet fit --weights {run.root} ...)")
    return result
