"""``leafnet.pretext.pretext``: from unlabelled images to a pretext run folder with ``backbone.keras``.

The run is a normal leafnet run folder (config.yaml, classes.json with the task's
classes, split.csv, history.csv, best/model.keras, metrics.json, plots, backup/ for
resuming): a :class:`PretextRun` in the run lifecycle of :mod:`leafnet.train.lifecycle`, plus:

* ``pretext.json``: the task, the backbone's registry name and the image size;
* ``backbone.keras``: the backbone alone (see :func:`leafnet.models.weights.save_backbone`),
  what ``leafnet fit --weights RUN`` transfers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from leafnet import console
from leafnet.config import Config
from leafnet.errors import DataError, LeafnetError
from leafnet.pretext.task import PretextTask, get_task
from leafnet.runs import Run, RunDir, default_run_dir, io_guard, read_split_rows, write_json
from leafnet.train.lifecycle import (
    ANY_IMAGES, RunContext, RunKind, as_config, hold_run, prepare_run, require_data, resolve_config)
from leafnet.train.trainer import Trainer

PRETEXT_FILE = "pretext.json"
BACKBONE_FILE = "backbone.keras"


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


class PretextRun(RunKind):
    """A pretext task in the run lifecycle: unlabelled images, the task's classes, and
    pretext.json beside the usual start files."""

    labelled = False
    empty_val = "the validation set is empty: use more images or a larger --val-split"

    def __init__(self, task: PretextTask, notes: list[str]):
        self.task, self.notes = task, notes
        self.config_header = (f"# leafnet pretext run config (task: {task.name}); "
                              f"`leafnet pretext --task {task.name} --config THIS` reproduces the run\n")

    def check_resumed(self, run: RunDir) -> None:
        _check_task(run, self.task)

    def is_complete(self, run: RunDir) -> bool:
        return run.metrics.exists() and (run.root / BACKBONE_FILE).exists()

    def complete_note(self, run: RunDir) -> str:
        return f"pretext run {run.root} is already complete; backbone: {run.root / BACKBONE_FILE}"

    def scan(self, cfg: Config, progress: bool):
        return _scan_split(cfg, progress)

    def read_split(self, run: RunDir):
        return _read_split(run)

    def needs_val(self, cfg: Config) -> bool:
        return True

    def classes(self, split) -> list[str]:
        return list(self.task.classes)

    def info(self, ctx: RunContext) -> dict:
        """pretext.json: the task, its classes and what the backbone was built with."""
        cfg = ctx.cfg
        return {"task": self.task.name, "classes": list(self.task.classes), "backbone": ctx.spec.name,
                "image_size": cfg.data.image_size, "weights": cfg.model.weights,
                "feature_layer": cfg.model.feature_layer}

    def write_start(self, ctx: RunContext) -> None:
        super().write_start(ctx)
        run = ctx.run
        io_guard(lambda: write_json(run.classes, list(self.task.classes)), str(run.classes))
        io_guard(lambda: write_json(run.root / PRETEXT_FILE, self.info(ctx)), PRETEXT_FILE)

    def announce(self, ctx: RunContext) -> str:
        task = self.task
        return "\n".join([f"pretext task {task.name}: {task.num_classes} classes ({', '.join(task.classes)}); "
                          f"run folder: {ctx.run.root}", *(f"  {note}" for note in self.notes), _summary(ctx.split)])

    def image_set(self, ctx: RunContext, paths: list[str], labels):
        from leafnet.data.pipeline import ImageSet

        return ImageSet(paths, np.zeros(len(paths)), 1, ctx.cfg.data.image_size)


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
    task = get_task(task)
    cfg = as_config(config, **flags)
    require_data(cfg, "pretext", data=ANY_IMAGES, validates="a pretext run keeps its best epoch")
    notes = task.adapt_config(cfg)
    if cfg.model.weights is None:
        cfg.model.weights = "none"   # a pretext task pre-trains from scratch unless told otherwise
    cfg, spec, size = resolve_config(cfg)

    root = Path(cfg.run.dir).expanduser() if cfg.run.dir else default_run_dir(f"{spec.name}-{task.name}")
    with hold_run(root):
        return _pretext(prepare_run(cfg, spec, RunDir(root), PretextRun(task, notes)))


def _pretext(ctx: RunContext) -> Run:
    """Train the pretext task of a prepared run; write backbone.keras, then the finished run."""
    from leafnet.models.weights import save_backbone
    from leafnet.pretext.datasets import PretextSet

    cfg, run, task = ctx.cfg, ctx.run, ctx.kind.task
    if ctx.complete:
        return Run(run.root)
    base_train, base_val, _ = ctx.image_sets(progress=bool(cfg.run.verbose))
    train = PretextSet(base_train, task, cfg.run.seed, epoch=0)
    val = PretextSet(base_val, task, cfg.run.seed, epoch=None)

    trainer = PretextTrainer(cfg, run, ctx.spec, ctx.model, train, val, from_scratch=cfg.model.weights == "none")
    history = ctx.fit(trainer)
    # backbone.keras before metrics.json: a run with metrics.json is complete.
    backbone_file = run.root / BACKBONE_FILE
    io_guard(lambda: save_backbone(ctx.model, ctx.spec, cfg.data.image_size, backbone_file,
                                   info={"pretext_task": task.name, "weights": cfg.model.weights}), str(backbone_file))
    ctx.finish(ctx.model, train, val, history)
    result = Run(run.root)
    if cfg.run.verbose:
        m = result.metrics
        console.info(f"pretext val_accuracy {m['val_accuracy']:.4f} (chance {1 / task.num_classes:.2f})  "
                     f"val_loss {m['val_loss']:.4f}")
        console.info(f"backbone: {backbone_file}   (transfer it with: leafnet fit --weights {run.root} ...)")
    return result
