"""``leafnet.fit``: from a config to a finished run folder.

The run lifecycle (claim or resume the folder, data, model, start files) is
:mod:`leafnet.train.lifecycle`'s; this module trains a classifier in it, on one process or
on every process of a multi-worker cluster (:mod:`leafnet.train.cluster`).
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from leafnet import console
from leafnet.config import Config
from leafnet.errors import LeafnetError
from leafnet.runs import Run, RunDir, default_run_dir
# The lifecycle's names that leafnet.train.fit also offers.
from leafnet.train.claim import (  # noqa: F401
    START_FILES, check_existing, first_difference, is_unfinished_start, stored_form, to_yaml)
from leafnet.train.finish import evaluate_split, finish_run  # noqa: F401
from leafnet.train.lifecycle import (  # noqa: F401
    RunContext, as_config, build_model, hold_run, prepare_run, refuse_without_validation, require_data,
    resolve_config, without_validation)

if TYPE_CHECKING:
    from leafnet.data.prepare import SplitData
    from leafnet.train.cluster import Cluster


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
    if split is None:
        require_data(cfg)
    cfg, spec, _ = resolve_config(cfg)

    root = Path(cfg.run.dir).expanduser() if cfg.run.dir else default_run_dir(spec.name)
    if cfg.run.distribute == "multiworker" and not cfg.run.dir:
        raise LeafnetError("--distribute multiworker needs --run-dir: every worker must name the same run folder")
    # Under tf.distribute the model, its optimizer and the training all live in the
    # strategy's scope; exec_cfg has the global batch and the scaled learning rates.
    from leafnet.train.distribute import distribution, is_multiworker

    strategy, exec_cfg = distribution(cfg)
    cluster = None
    if strategy is not None and is_multiworker(strategy):
        from leafnet.train.cluster import Cluster, cluster_errors

        cluster = Cluster(strategy, root, cfg.run.verbose)
    # Only the chief of a cluster locks the run folder: the workers write none.
    with cluster_errors() if cluster is not None else contextlib.nullcontext(), hold_run(root, cluster):
        return _fit(cfg, exec_cfg, spec, strategy, split, RunDir(root), cluster)


def _fit(cfg: Config, exec_cfg: Config, spec, strategy, split, run: RunDir, cluster: Cluster | None) -> Run:
    """``fit`` on one process, or on one process of a cluster: the chief writes the run folder,
    the other workers train with it in a scratch folder."""
    from leafnet.train.trainer import Trainer

    verbose = cfg.run.verbose
    scope = strategy.scope if strategy is not None else None
    ctx = prepare_run(cfg, spec, run, split=split, peers=cluster, scope=scope)
    if ctx.complete:
        return Run(run.root) if ctx.writes else Run(cluster.root)
    said = bool(verbose) and ctx.writes   # a worker says only its own lines
    worker = not ctx.writes
    with cluster.scratch() if worker else contextlib.nullcontext(run) as folder, \
            scope() if scope is not None else contextlib.nullcontext():
        train, val, mode = ctx.image_sets(folder, progress=said)
        if val is None and said:
            console.note("--val-split 0: no validation; every image trains, with no best checkpoint or early "
                         "stopping, and the last epoch's weights are the model")
        from_scratch = cfg.model.weights == "none"
        if from_scratch and cfg.transfer.epochs > 0 and said:
            console.info("warning: --weights none: the backbone starts from random weights, so the transfer phase trains the "
                         "whole network (a frozen random backbone would learn nothing); the fine-tune phase then continues "
                         "with the last blocks at its lower learning rate")
        class_weight = _class_weights(train.labels, len(ctx.classes)) if cfg.data.balance == "weights" else None
        trainer_cfg = exec_cfg
        if worker:
            trainer_cfg = copy.deepcopy(exec_cfg)
            trainer_cfg.run.verbose = 0
        trainer = Trainer(trainer_cfg, folder, spec, ctx.model, train, val, class_weight=class_weight,
                          from_scratch=from_scratch, steps=cluster.steps(exec_cfg) if cluster is not None else None,
                          chief=ctx.writes)
        history = ctx.fit(trainer)
        test = None if worker else _held_out(ctx, mode, verbose)
        if cluster is None:
            ctx.finish(ctx.model, train, val, history, test=test)
    if worker:
        cluster.done()
        return Run(cluster.root)
    if cluster is not None:
        # Evaluation and saving need no other worker: a plain copy of the trained model.
        ctx.finish(_local_copy(cfg, spec, len(ctx.classes), ctx.model, trainer), train, val, history, test=test)
    result = Run(run.root)
    if verbose:
        console.info(result.summary())
    return result


def _class_weights(labels: np.ndarray, n: int) -> dict[int, float]:
    counts = np.bincount(labels, minlength=n).astype(float)
    return {i: float(len(labels) / (n * c)) if c else 0.0 for i, c in enumerate(counts)}


def _held_out(ctx: RunContext, mode: str, verbose: int):
    """The test subset as a cached ImageSet, decoded only once training is over; None without one."""
    from leafnet.data.pipeline import ImageSet

    paths, labels, hashes = ctx.split.rows("test")
    if not paths:
        return None
    test = ImageSet(paths, labels, len(ctx.split.classes), ctx.cfg.data.image_size)
    test.cache(mode, ctx.run.cache, hashes, progress=bool(verbose), label="test")
    return test


def _local_copy(cfg: Config, spec, num_classes: int, model, trainer):
    """The trained model rebuilt outside the multi-worker strategy, frozen and compiled as
    the run ended: evaluating or saving it involves no other worker."""
    plain = copy.deepcopy(cfg)
    plain.model.weights = "none"     # the architecture only: the weights come from ``model``
    local = build_model(plain, spec, num_classes)
    local.set_weights([np.asarray(w) for w in model.weights])
    trainer.compile_final(local)
    return local
