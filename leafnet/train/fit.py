"""``leafnet.fit``: from a config to a finished run folder."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from leafnet.config import Config, config_from_dict, has_data_source, read_yaml
from leafnet.errors import DataError, LeafnetError
from leafnet.runs import Run, RunDir, default_run_dir, io_guard, save_keras, write_json, write_text

if TYPE_CHECKING:
    from leafnet.data.prepare import SplitData

log = logging.getLogger("leafnet")

# Keys that may differ between the stored config and the command that resumes it.
_COSMETIC = {("run", "dir"), ("run", "verbose")}


def _abspath(p: str | None) -> str | None:
    return str(Path(p).expanduser().resolve()) if p else p


def resolve_config(cfg: Config) -> tuple[Config, Any, int]:
    """Fill what the defaults leave open: canonical backbone name, image size, absolute paths.

    Returns:
        ``(resolved config, backbone spec, image size)``.
    """
    from leafnet.models.classifier import backbone_spec

    cfg = copy.deepcopy(cfg)
    spec = backbone_spec(cfg.model)  # the registry's entry, a keras-hub preset's, cut at model.feature_layer
    cfg.model.backbone = spec.name
    from leafnet.models.classifier import resolve_finetune_blocks

    resolve_finetune_blocks(spec, cfg.finetune.blocks)  # refuse N > blocks before any work
    cfg.data.image_size = cfg.data.image_size or spec.default_size
    for key in ("data", "train", "val"):
        setattr(cfg.data, key, _abspath(getattr(cfg.data, key)))
    if cfg.model.weights not in ("imagenet", "none"):
        from leafnet.models.weights import canonical_weights

        cfg.model.weights = canonical_weights(cfg.model.weights)  # an absolute path, or hub:PRESET
    return cfg, spec, cfg.data.image_size


def stored_form(cfg: Config) -> dict:
    d = cfg.to_dict()
    d["run"]["dir"] = None  # config.yaml reproduces the run into a new folder
    return d


def first_difference(a: dict, b: dict) -> str | None:
    for section in a:
        for key in a[section]:
            if (section, key) in _COSMETIC:
                continue
            if a[section].get(key) != b.get(section, {}).get(key):
                return f"{section}.{key}: {b.get(section, {}).get(key)!r} in the folder, {a[section][key]!r} now"
    return None


def check_existing(run: RunDir, cfg: Config) -> bool:
    """True when ``run`` holds this run already (resume); refuse a folder that holds another."""
    if not run.root.exists() or not any(run.root.iterdir()):
        return False
    if not run.config.exists():
        raise LeafnetError(f"run folder {run.root} exists and is not a leafnet run; choose another --run-dir")
    stored = read_yaml(run.config)
    try:
        config_from_dict(stored)
    except LeafnetError as e:
        raise LeafnetError(f"run folder {run.root} has an unreadable config.yaml ({e})") from None
    diff = first_difference(stored_form(cfg), stored)
    if diff:
        raise LeafnetError(f"run folder {run.root} holds a different run ({diff}); "
                           "use another --run-dir, or delete the folder to start over")
    return True


def _class_weights(labels: np.ndarray, n: int) -> dict[int, float]:
    counts = np.bincount(labels, minlength=n).astype(float)
    return {i: float(len(labels) / (n * c)) if c else 0.0 for i, c in enumerate(counts)}


def evaluate_split(model, images, classes: list[str], batch_size: int) -> dict:
    """Accuracy, loss and per-class figures of ``model`` on one cached image set."""
    probs = model.predict(images.dataset(batch_size), verbose=0)
    y = np.asarray(images.labels)
    pred = probs.argmax(axis=1)
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class = {}
    for i, c in enumerate(classes):
        total = int(cm[i].sum())
        per_class[c] = {"accuracy": float(cm[i, i] / total) if total else None, "n": total}
    accs = [v["accuracy"] for v in per_class.values() if v["accuracy"] is not None]
    ce = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)))) if len(y) else float("nan")
    return {"accuracy": float((pred == y).mean()) if len(y) else float("nan"), "crossentropy": ce,
            "mean_class_accuracy": float(np.mean(accs)) if accs else float("nan"),
            "per_class": per_class, "confusion": cm.tolist()}


def as_config(config: Config | dict | str | os.PathLike | None = None, **flags: Any) -> Config:
    """A validated Config from a Config, a nested dict or a YAML path, plus dotted overrides."""
    from leafnet.config import apply_dict, load_config, validate

    if isinstance(config, (Config, dict)):
        cfg = copy.deepcopy(config) if isinstance(config, Config) else apply_dict(Config(), config)
        apply_dict(cfg, _nest(flags))
        validate(cfg)
        return cfg
    return load_config(config, flags=flags)


def build_model(cfg: Config, spec, num_classes: int):
    """The classifier of a resolved config, seeded, with ``model.weights`` loaded."""
    import keras

    from leafnet.models.classifier import build_classifier
    from leafnet.models.weights import load_backbone_weights

    keras.utils.set_random_seed(cfg.run.seed)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(cfg.run.precision)  # the layers keep the policy they are built with
    try:
        model = build_classifier(spec, num_classes, cfg.data.image_size, cfg.model, cfg.augment, seed=cfg.run.seed)
    finally:
        keras.config.set_dtype_policy(previous)
    if cfg.model.weights not in ("imagenet", "none"):
        n = load_backbone_weights(model, spec, cfg.model.weights)
        if cfg.run.verbose:
            print(f"loaded {n} backbone layers from {cfg.model.weights}")
    return model


def fit(config: Config | dict | str | os.PathLike | None = None, *, split: SplitData | None = None,
        **flags: Any) -> Run:
    """Train a classifier: scan and split the data, build the model, run both phases.

    Args:
        config: a :class:`Config`, a nested dict, or a YAML path; None for the defaults.
        split: a scan and split made by the caller (a search scans once for all its trials,
            cross-validation makes one per fold); None to scan and split ``config.data``.
        **flags: dotted overrides, e.g. ``fit(cfg, **{"model.backbone": "b0"})``.

    Returns:
        The :class:`Run`; ``run.metrics["val_accuracy"]`` holds the final val accuracy.

    Example:
        >>> run = leafnet.fit({"data": {"demo": True}, "model": {"backbone": "simple-cnn", "weights": "none"}})
    """
    cfg = as_config(config, **flags)
    if split is None and not has_data_source(cfg):
        raise DataError("no data given: use --data DIR (one sub-folder per class), --train DIR --val DIR, or --demo")
    cfg, spec, size = resolve_config(cfg)
    verbose = cfg.run.verbose

    root = Path(cfg.run.dir).expanduser() if cfg.run.dir else default_run_dir(spec.name)
    run = RunDir(root)
    resuming = check_existing(run, cfg)
    if resuming and run.metrics.exists():
        if verbose:
            print(f"run {run.root} is already complete (val_accuracy {Run(run.root).metrics.get('val_accuracy')}); "
                  "nothing to do")
        return Run(run.root)

    from leafnet.data.prepare import read_split, scan_and_split, summarize, write_split
    from leafnet.data.pipeline import ImageSet
    from leafnet.train.trainer import Trainer, plan_phases

    plan_phases(cfg)
    if resuming:
        run.clean_temporaries()
        split = read_split(run)
    elif split is None:
        split = scan_and_split(cfg.data, cfg.run.seed, progress=bool(verbose))
    classes = split.classes
    train_paths, train_labels, train_hashes = split.subset(val=False)
    val_paths, val_labels, val_hashes = split.subset(val=True)
    if not val_paths:
        raise DataError("the validation set is empty: use more images per class or a larger --val-split")
    # Under tf.distribute the model, its optimizer and the training all live in the
    # strategy's scope; exec_cfg has the global batch and the scaled learning rates.
    from leafnet.train.distribute import distribution

    strategy, exec_cfg = distribution(cfg)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        # The model (and its weights: an offline ImageNet download fails here) comes before the
        # run folder, so a refused start leaves nothing behind.
        model = build_model(cfg, spec, len(classes))
        if not resuming:
            run.create()
            io_guard(lambda: write_split(run, split), f"the data files in {run.root}")
            io_guard(lambda: write_text(run.config, "# leafnet run config; `leafnet fit --config THIS` reproduces "
                                        "the run into a new folder\n" + to_yaml(stored_form(cfg))), str(run.config))
        if verbose:
            print(f"run folder: {run.root}  (if interrupted, rerun the same command with --run-dir {run.root} to resume)")
            print(summarize(split))
        train = ImageSet(train_paths, train_labels, len(classes), size)
        val = ImageSet(val_paths, val_labels, len(classes), size)
        mode = train.cache(cfg.data.cache, run.cache, train_hashes, progress=bool(verbose), label="train")
        val.cache(mode, run.cache, val_hashes, progress=bool(verbose), label="val")

        from_scratch = cfg.model.weights == "none"
        if from_scratch and cfg.transfer.epochs > 0 and verbose:
            print("warning: --weights none: the backbone starts from random weights, so the transfer phase trains the "
                  "whole network (a frozen random backbone would learn nothing); the fine-tune phase then continues "
                  "with the last blocks at its lower learning rate")

        class_weight = _class_weights(train.labels, len(classes)) if cfg.data.balance == "weights" else None
        trainer = Trainer(exec_cfg, run, spec, model, train, val, class_weight=class_weight, from_scratch=from_scratch)
        t0 = time.perf_counter()
        history = trainer.fit()
        finish_run(run, cfg, model, spec, classes, train, val, history, time.perf_counter() - t0)
    result = Run(run.root)
    if verbose:
        m = result.metrics
        print(f"val_accuracy {m['val_accuracy']:.4f}  val_loss {m['val_loss']:.4f}  "
              f"mean per-class accuracy {m['mean_class_accuracy']:.4f}")
        print(f"run folder: {run.root}")
    return result


def finish_run(run: RunDir, cfg: Config, model, spec, classes, train, val, history, seconds: float) -> None:
    """Write model.keras, metrics.json and the plots of a completed run."""
    from leafnet.plots import plot_confusion, plot_curves

    io_guard(lambda: save_keras(model, run.model), str(run.model))
    results = model.evaluate(val.dataset(cfg.data.batch_size), verbose=0, return_dict=True)
    ev = evaluate_split(model, val, classes, cfg.data.batch_size)
    best = min(history, key=lambda r: r["val_loss"]) if history else {}
    metrics = {
        "val_accuracy": ev["accuracy"], "val_loss": float(results["loss"]), "val_crossentropy": ev["crossentropy"],
        "mean_class_accuracy": ev["mean_class_accuracy"],
        "per_class": ev["per_class"], "confusion": ev["confusion"], "classes": classes,
        "train_images": len(train), "val_images": len(val), "epochs": len(history),
        "best_val_loss_epoch": best.get("epoch"), "backbone": spec.name, "image_size": cfg.data.image_size,
        "train_seconds_this_session": round(seconds, 1),
    }
    plot_curves(history, run.plots / "curves.png", title=f"{spec.name} on {len(classes)} classes")
    plot_confusion(np.array(ev["confusion"]), classes, run.plots / "confusion_val.png",
                   title=f"validation ({len(val)} images), accuracy {ev['accuracy']:.3f}")
    io_guard(lambda: write_json(run.metrics, metrics), str(run.metrics))


def to_yaml(d: dict) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


def _nest(flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        if "." not in dotted:
            raise LeafnetError(f"fit() keyword {dotted!r} must be section.key, e.g. 'model.backbone'")
        section, key = dotted.split(".", 1)
        nested.setdefault(section, {})[key] = value
    return nested
