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

from leafnet import runlock
from leafnet.config import Config, config_from_dict, has_data_source, read_yaml
from leafnet.errors import ConfigError, DataError, LeafnetError
from leafnet.runs import Run, RunDir, default_run_dir, io_guard, save_keras, write_json, write_text

if TYPE_CHECKING:
    from leafnet.data.prepare import SplitData

log = logging.getLogger("leafnet")

# Keys that may differ between the stored config and the command that resumes it.
_COSMETIC = {("run", "dir"), ("run", "verbose")}


def _abspath(p: str | None) -> str | None:
    return str(Path(p).expanduser().resolve()) if p else p


def resolve_config(cfg: Config) -> tuple[Config, Any, int]:
    """Fill what the defaults leave open: canonical backbone name, image size, absolute paths,
    the defaults that depend on other choices (said on the console unless quiet).

    Returns:
        ``(resolved config, backbone spec, image size)``.
    """
    from leafnet.config import resolve_defaults
    from leafnet.data.layout import use_split_layout
    from leafnet.models.classifier import backbone_spec

    cfg = copy.deepcopy(cfg)
    spec = backbone_spec(cfg.model)  # the registry's entry, a keras-hub preset's, cut at model.feature_layer
    cfg.model.backbone = spec.name
    for note in resolve_defaults(cfg, has_imagenet=spec.imagenet):
        if cfg.run.verbose:
            print(f"note: {note}")
    from leafnet.models.classifier import resolve_finetune_blocks

    resolve_finetune_blocks(spec, cfg.finetune.blocks)  # refuse N > blocks before any work
    cfg.data.image_size = cfg.data.image_size or spec.default_size
    use_split_layout(cfg.data, verbose=bool(cfg.run.verbose))
    for key in ("data", "train", "val", "test"):
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
    if not run.root.exists() or all(p.name == runlock.LOCK_NAME for p in run.root.iterdir()):
        return False
    if not run.config.exists() and is_unfinished_start(run):
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


# What a start writes before config.yaml, its last file: a folder holding nothing else is a
# start that was killed (or ran out of space) and is started again.
START_FILES = frozenset({"classes.json", "split.csv", "data_report.json", ".write-test", runlock.LOCK_NAME})


def is_unfinished_start(run: RunDir) -> bool:
    """True when ``run`` holds only files a start writes before its config.yaml."""
    for p in run.root.iterdir():
        if p.name in ("plots", "backup") and p.is_dir() and not any(p.iterdir()):
            continue
        if p.name not in START_FILES and not (p.name.startswith(".") and ".tmp" in p.name):
            return False
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
    if cfg.run.sync_batchnorm:
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True   # Keras all-reduces the moments in a replica context
    if cfg.run.fused_batchnorm:
        from leafnet.models.fused_bn import use_fused_batchnorm

        use_fused_batchnorm(model)   # layers with synchronized=True keep Keras' own call
    if cfg.run.fused_swish:
        from leafnet.models.fused_swish import use_fused_swish

        use_fused_swish(model)       # CPU only; configs and files stay plain Keras
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
    from leafnet.console import import_tensorflow_quietly
    from leafnet.perf import configure_tensorflow

    import_tensorflow_quietly()  # a notebook's or script's first TensorFlow import, without its start-up lines
    configure_tensorflow()      # a no-op once TensorFlow has run an op
    cfg = as_config(config, **flags)
    if split is None and not has_data_source(cfg):
        raise DataError("no data given: use --data DIR (one sub-folder per class), --train DIR --val DIR, or --demo")
    cfg, spec, _ = resolve_config(cfg)

    root = Path(cfg.run.dir).expanduser() if cfg.run.dir else default_run_dir(spec.name)
    if cfg.run.distribute == "multiworker" and not cfg.run.dir:
        raise LeafnetError("--distribute multiworker needs --run-dir: every worker must name the same run folder")
    run = RunDir(root)
    # Under tf.distribute the model, its optimizer and the training all live in the
    # strategy's scope; exec_cfg has the global batch and the scaled learning rates.
    from leafnet.train.distribute import distribution, is_chief, is_multiworker

    strategy, exec_cfg = distribution(cfg)
    multiworker = strategy is not None and is_multiworker(strategy)
    if not multiworker:
        with runlock.hold(run.root):
            return _fit(cfg, exec_cfg, spec, strategy, split, run)
    with _cluster_errors():
        if not is_chief(strategy):   # the workers write no run folder: only the chief locks it
            return _fit_worker(cfg, exec_cfg, spec, strategy, split, root)
        lock = contextlib.ExitStack()
        try:
            lock.enter_context(runlock.hold(run.root))
        except LeafnetError as e:
            _tell_workers(strategy, {"error": str(e)})
            raise
        with lock:
            return _fit(cfg, exec_cfg, spec, strategy, split, run)


@contextlib.contextmanager
def _cluster_errors():
    """A worker that stops (killed, or refused) makes the collectives of the others fail
    with UnavailableError about 10 s later: one line instead of a page of gRPC."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError) as e:
        first = next((line for line in str(e).splitlines() if "unhealthy" in line or "aborted" in line.lower()),
                     str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise LeafnetError(f"the cluster stopped: another worker is gone ({first.strip()[:200]}); run the same "
                           "command on every worker again: training resumes from the chief's last finished epoch") \
            from None


def _tell_workers(strategy, status: dict) -> None:
    from leafnet.train.steps import broadcast_json

    broadcast_json(strategy, status, is_chief=True)


def _fit(cfg: Config, exec_cfg: Config, spec, strategy, split, run: RunDir) -> Run:
    """``fit`` on one process, or on the chief of a cluster."""
    from leafnet.train.distribute import is_multiworker

    multiworker = strategy is not None and is_multiworker(strategy)
    verbose, size = cfg.run.verbose, cfg.data.image_size
    try:
        resuming = check_existing(run, cfg)
    except LeafnetError as e:
        if multiworker:
            _tell_workers(strategy, {"error": str(e)})
        raise
    if multiworker:
        _tell_workers(strategy, {"done": bool(resuming and run.metrics.exists())})
    if resuming and run.metrics.exists():
        if verbose:
            print(f"this run is already complete; nothing to do\n{Run(run.root).summary()}")
        return Run(run.root)

    from leafnet.data.prepare import read_split, scan_and_split, summarize, write_split
    from leafnet.data.pipeline import ImageSet
    from leafnet.train.trainer import Trainer, plan_phases

    plan_phases(cfg)
    if resuming:
        from leafnet.data.verify import data_roots, new_files_note, verify_resume

        run.clean_temporaries()
        added = verify_resume(run, data_roots(cfg.data))
        split = read_split(run)
        if added and verbose:
            print(new_files_note(added))
    elif split is None:
        split = scan_and_split(cfg.data, cfg.run.seed, progress=bool(verbose))
    classes = split.classes
    train_paths, train_labels, train_hashes = split.subset(val=False)
    val_paths, val_labels, val_hashes = split.subset(val=True)
    if not val_paths and not without_validation(cfg):
        raise DataError("the validation set is empty: use more images per class or a larger --val-split")
    if multiworker:
        _same_data_everywhere(strategy, split, chief=True)
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
        mode = train.cache(cfg.data.cache, run.cache, train_hashes, progress=bool(verbose), label="train")
        val = None
        if val_paths:
            val = ImageSet(val_paths, val_labels, len(classes), size)
            val.cache(mode, run.cache, val_hashes, progress=bool(verbose), label="val")
        elif verbose:
            print("note: --val-split 0: no validation; every image trains, with no best checkpoint or early "
                  "stopping, and the last epoch's weights are the model")

        from_scratch = cfg.model.weights == "none"
        if from_scratch and cfg.transfer.epochs > 0 and verbose:
            print("warning: --weights none: the backbone starts from random weights, so the transfer phase trains the "
                  "whole network (a frozen random backbone would learn nothing); the fine-tune phase then continues "
                  "with the last blocks at its lower learning rate")

        class_weight = _class_weights(train.labels, len(classes)) if cfg.data.balance == "weights" else None
        trainer = Trainer(exec_cfg, run, spec, model, train, val, class_weight=class_weight, from_scratch=from_scratch,
                          steps=_steps(strategy, exec_cfg) if multiworker else None)
        t0 = time.perf_counter()
        history = trainer.fit()
        test = _held_out(split, cfg, run, mode, verbose)
        if not multiworker:
            finish_run(run, cfg, model, spec, classes, train, val, history, time.perf_counter() - t0, test=test)
    if multiworker:
        # Evaluation and saving need no other worker: a plain copy of the trained model.
        finish_run(run, cfg, _local_copy(cfg, spec, len(classes), model, trainer), spec, classes, train, val,
                   history, time.perf_counter() - t0, test=test)
    result = Run(run.root)
    if verbose:
        print(result.summary())
    return result


def without_validation(cfg: Config) -> bool:
    """``data.val_split: 0`` on one folder: every image trains and nothing is validated."""
    return cfg.data.val_split == 0 and not cfg.data.val


def refuse_without_validation(cfg: Config, why: str) -> None:
    if without_validation(cfg):
        raise ConfigError(f"{why} on the validation set: --val-split must be > 0 (or give --train DIR --val DIR); "
                          "received 0")


def _held_out(split: SplitData, cfg: Config, run: RunDir, mode: str, verbose: int):
    """The test subset as a cached ImageSet, decoded only once training is over; None without one."""
    from leafnet.data.pipeline import ImageSet

    paths, labels, hashes = split.rows("test")
    if not paths:
        return None
    test = ImageSet(paths, labels, len(split.classes), cfg.data.image_size)
    test.cache(mode, run.cache, hashes, progress=bool(verbose), label="test")
    return test


def _steps(strategy, cfg: Config):
    from leafnet.train.steps import DistributedSteps

    return DistributedSteps(strategy, jit_compile=cfg.run.jit_compile)


def _same_data_everywhere(strategy, split: SplitData, chief: bool) -> None:
    """Refuse, on every worker at once, a cluster whose workers see different data."""
    from leafnet.data.prepare import split_fingerprint
    from leafnet.train.steps import agree, broadcast_json

    mine = split_fingerprint(split)
    theirs = broadcast_json(strategy, mine, is_chief=chief)
    if agree(strategy, mine != theirs):
        raise DataError("the workers of the cluster do not see the same data (file list, classes or split differ "
                        "from the chief's): every worker needs the same --data folder at the same path")


def _local_copy(cfg: Config, spec, num_classes: int, model, trainer):
    """The trained model rebuilt outside the multi-worker strategy, frozen and compiled as
    the run ended: evaluating or saving it involves no other worker."""
    plain = copy.deepcopy(cfg)
    plain.model.weights = "none"     # the architecture only: the weights come from ``model``
    local = build_model(plain, spec, num_classes)
    local.set_weights([np.asarray(w) for w in model.weights])
    trainer.compile_final(local)
    return local


def _fit_worker(cfg: Config, exec_cfg: Config, spec, strategy, split, root: Path):
    """A non-chief worker of a multi-worker cluster: the same data and steps as the chief,
    nothing written but a scratch folder (its image cache), removed at the end."""
    import shutil
    import tempfile

    from leafnet.data.pipeline import ImageSet
    from leafnet.data.prepare import scan_and_split
    from leafnet.train.distribute import task_name
    from leafnet.train.trainer import Trainer

    verbose = cfg.run.verbose
    if verbose:
        print(f"{task_name(strategy)}: training with the chief; the chief writes {root}", flush=True)
    from leafnet.train.steps import broadcast_json

    status = broadcast_json(strategy, None, is_chief=False)
    if status.get("error"):
        raise LeafnetError(f"the chief refused the run: {status['error']}")
    if status.get("done"):
        if verbose:
            print(f"{task_name(strategy)}: the run in {root} is already complete; nothing to do")
        return Run(root)
    split = split if split is not None else scan_and_split(cfg.data, cfg.run.seed, progress=False)
    _same_data_everywhere(strategy, split, chief=False)
    # One scratch folder per (run folder, task): a worker killed with SIGKILL leaves it
    # behind, and its restart takes it over and removes it at the end.
    import hashlib

    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    scratch = RunDir(Path(tempfile.gettempdir()) / f"leafnet-worker-{key}-{task_name(strategy).replace(' ', '')}")
    shutil.rmtree(scratch.root, ignore_errors=True)
    try:
        scratch.create()
        size = cfg.data.image_size
        classes = split.classes
        (tp, tl, th), (vp, vl, vh) = split.subset(val=False), split.subset(val=True)
        quiet = copy.deepcopy(exec_cfg)
        quiet.run.verbose = 0
        with strategy.scope():
            model = build_model(cfg, spec, len(classes))
            train = ImageSet(tp, tl, len(classes), size)
            mode = train.cache(cfg.data.cache, scratch.cache, th, progress=False, label="train")
            val = ImageSet(vp, vl, len(classes), size) if vp else None
            if val is not None:
                val.cache(mode, scratch.cache, vh, progress=False, label="val")
            class_weight = _class_weights(train.labels, len(classes)) if cfg.data.balance == "weights" else None
            trainer = Trainer(quiet, scratch, spec, model, train, val, class_weight=class_weight,
                              from_scratch=cfg.model.weights == "none", steps=_steps(strategy, exec_cfg), chief=False)
            trainer.fit()
    finally:
        shutil.rmtree(scratch.root, ignore_errors=True)
    if verbose:
        print(f"{task_name(strategy)}: done; the run folder is the chief's, {root}", flush=True)
    return Run(root)


def finish_run(run: RunDir, cfg: Config, model, spec, classes, train, val, history, seconds: float,
               test=None) -> None:
    """Write model.keras, metrics.json and the plots of a completed run; with ``test`` (the
    held-out images), metrics.json's ``test`` block and plots/confusion_test.png. Each
    confusion matrix is also written whole as plots/confusion_<subset>.csv. The numbers are
    written first: a figure that fails to draw is a warning line."""
    from leafnet.confusion import csv_path, write_confusion_csv
    from leafnet.history import restored_epochs
    from leafnet.plots import draw_or_warn, plot_confusion, plot_curves
    from leafnet.train.trainer import plan_phases

    io_guard(lambda: save_keras(model, run.model), str(run.model))
    validated = [r for r in history if r.get("val_loss") is not None]
    best = min(validated, key=lambda r: r["val_loss"]) if validated else {}
    restored = restored_epochs(history, {p.name: p.cfg.monitor for p in plan_phases(cfg)})
    metrics = {
        "val_accuracy": None, "val_loss": None, "val_crossentropy": None, "mean_class_accuracy": None,
        "per_class": None, "confusion": None, "classes": classes,
        "train_images": len(train), "val_images": len(val) if val is not None else 0, "epochs": len(history),
        "best_val_loss_epoch": best.get("epoch"), "restored_epochs": restored, "backbone": spec.name,
        "image_size": cfg.data.image_size,
        "train_seconds_this_session": round(seconds, 1),
    }
    matrices = []   # (png, confusion, title) drawn once metrics.json is written
    if val is not None:
        results = model.evaluate(val.dataset(cfg.data.batch_size), verbose=0, return_dict=True)
        ev = evaluate_split(model, val, classes, cfg.data.batch_size)
        metrics.update({"val_accuracy": ev["accuracy"], "val_loss": float(results["loss"]),
                        "val_crossentropy": ev["crossentropy"], "mean_class_accuracy": ev["mean_class_accuracy"],
                        "per_class": ev["per_class"], "confusion": ev["confusion"]})
        matrices.append((run.plots / "confusion_val.png", ev["confusion"],
                         f"validation at the end of fit: {len(val)} images, accuracy {ev['accuracy']:.3f}, "
                         "row-normalised"))
    if test is not None:
        held = evaluate_split(model, test, classes, cfg.data.batch_size)
        metrics["test"] = {"accuracy": held["accuracy"], "crossentropy": held["crossentropy"],
                           "mean_class_accuracy": held["mean_class_accuracy"], "images": len(test),
                           "per_class": held["per_class"], "confusion": held["confusion"]}
        matrices.append((run.plots / "confusion_test.png", held["confusion"],
                         f"test, held out: {len(test)} images, accuracy {held['accuracy']:.3f}, row-normalised"))
    io_guard(lambda: write_json(run.metrics, metrics), str(run.metrics))
    for png, cm, _ in matrices:
        io_guard(lambda: write_confusion_csv(cm, classes, csv_path(png)), str(csv_path(png)))
    for png, cm, title in matrices:
        draw_or_warn(lambda: plot_confusion(np.array(cm), classes, png, normalized=True, title=title,
                                            table=csv_path(png).name), png)
    curves = run.plots / "curves.png"
    draw_or_warn(lambda: plot_curves(history, curves, title=f"{spec.name} on {len(classes)} classes",
                                     restored=restored), curves)


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
