"""The run lifecycle shared by fit, pretext, lr-find, cv and search.

A command that trains opens with :func:`require_data`, turns its config into a resolved one
(:func:`as_config`, :func:`resolve_config`), then :func:`prepare_run`, inside
:func:`hold_run`, claims or resumes the run folder, scans and splits the data once (or
reads the stored split back and verifies it), builds the model and, on a new start,
writes the start files with config.yaml last. What differs between a classifier and a
pretext task is a :class:`RunKind`; the :class:`RunContext` it returns caches the image
sets, times the trainer and writes the finished run.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from leafnet import console
from leafnet import runlock
from leafnet.config import Config, has_data_source
from leafnet.errors import ConfigError, DataError, LeafnetError
from leafnet.runs import Run, RunDir, io_guard, write_text
from leafnet.train.claim import check_existing, stored_form, to_yaml

if TYPE_CHECKING:
    from leafnet.data.prepare import SplitData

# How the "no data given" error describes --data: a classifier's folder, or any folder of images.
CLASS_FOLDERS = " (one sub-folder per class)"
ANY_IMAGES = " (any folder of images; labels are ignored)"


def require_data(cfg: Config, command: str | None = None, *, data: str = CLASS_FOLDERS,
                 validates: str | None = None) -> None:
    """The opening checks of a command that trains.

    Args:
        cfg: the command's config.
        command: the command's name, refusing ``--distribute multiworker`` (which only
            ``leafnet fit`` runs); None to allow it.
        data: how the error for no data describes ``--data DIR``.
        validates: why the command needs a validation set (refusing ``--val-split 0``); None
            when it can train without one.
    """
    if command is not None:
        from leafnet.train.distribute import refuse_multiworker

        refuse_multiworker(cfg, command)
    if not has_data_source(cfg):
        raise DataError(f"no data given: use --data DIR{data}, --train DIR --val DIR, or --demo")
    if validates is not None:
        refuse_without_validation(cfg, validates)


def without_validation(cfg: Config) -> bool:
    """``data.val_split: 0`` on one folder: every image trains and nothing is validated."""
    return cfg.data.val_split == 0 and not cfg.data.val


def refuse_without_validation(cfg: Config, why: str) -> None:
    """Refuse ``--val-split 0`` for a command that needs a validation set (``why``)."""
    if without_validation(cfg):
        raise ConfigError(f"{why} on the validation set: --val-split must be > 0 (or give --train DIR --val DIR); "
                          "received 0")


def as_config(config: Config | dict | str | os.PathLike | None = None, **flags: Any) -> Config:
    """A validated Config from a Config, a nested dict or a YAML path, plus dotted overrides."""
    from leafnet.config import apply_dict, load_config, validate

    if isinstance(config, (Config, dict)):
        cfg = copy.deepcopy(config) if isinstance(config, Config) else apply_dict(Config(), config)
        apply_dict(cfg, nest_flags(flags))
        validate(cfg)
        return cfg
    return load_config(config, flags=flags)


def nest_flags(flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"model.backbone": "b0"}`` as ``{"model": {"backbone": "b0"}}``; None values dropped."""
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        if "." not in dotted:
            raise LeafnetError(f"fit() keyword {dotted!r} must be section.key, e.g. 'model.backbone'")
        section, key = dotted.split(".", 1)
        nested.setdefault(section, {})[key] = value
    return nested


def resolve_config(cfg: Config) -> tuple[Config, Any, int]:
    """Fill what the defaults leave open: canonical backbone name, image size, absolute paths,
    the defaults that depend on other choices (said on the console unless quiet).

    Returns:
        ``(resolved config, backbone spec, image size)``.
    """
    from leafnet.config import resolve_defaults
    from leafnet.data.layout import use_split_layout
    from leafnet.models.classifier import backbone_spec, resolve_finetune_blocks

    cfg = copy.deepcopy(cfg)
    spec = backbone_spec(cfg.model)  # the registry's entry, a keras-hub preset's, cut at model.feature_layer
    cfg.model.backbone = spec.name
    for note in resolve_defaults(cfg, has_imagenet=spec.imagenet):
        if cfg.run.verbose:
            console.note(note)
    resolve_finetune_blocks(spec, cfg.finetune.blocks)  # refuse N > blocks before any work
    cfg.data.image_size = cfg.data.image_size or spec.default_size
    use_split_layout(cfg.data, verbose=bool(cfg.run.verbose))
    for key in ("data", "train", "val", "test"):
        value = getattr(cfg.data, key)
        setattr(cfg.data, key, str(Path(value).expanduser().resolve()) if value else value)
    if cfg.model.weights not in ("imagenet", "none"):
        from leafnet.models.weights import canonical_weights

        cfg.model.weights = canonical_weights(cfg.model.weights)  # an absolute path, or hub:PRESET
    return cfg, spec, cfg.data.image_size


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
            console.info(f"loaded {n} backbone layers from {cfg.model.weights}")
    return model


class RunKind:
    """What a kind of run brings to the lifecycle; this base is a classifier on labelled folders."""

    labelled = True   # split.csv's classes are the labels (a resume checks new files per class)
    empty_val = "the validation set is empty: use more images per class or a larger --val-split"
    config_header = ("# leafnet run config; `leafnet fit --config THIS` reproduces the run into a new folder\n")

    def check_resumed(self, run: RunDir) -> None:
        """Refuse a folder holding this config as another kind of run."""

    def is_complete(self, run: RunDir) -> bool:
        """The resumed folder holds a finished run."""
        return run.metrics.exists()

    def complete_note(self, run: RunDir) -> str:
        """What a rerun of a finished run says."""
        return f"this run is already complete; nothing to do\n{Run(run.root).summary()}"

    def scan(self, cfg: Config, progress: bool) -> SplitData:
        """Scan and split the configured data."""
        from leafnet.data.prepare import scan_and_split

        return scan_and_split(cfg.data, cfg.run.seed, progress=progress)

    def read_split(self, run: RunDir) -> SplitData:
        """The split a resumed run stored."""
        from leafnet.data.prepare import read_split

        return read_split(run)

    def needs_val(self, cfg: Config) -> bool:
        """An empty validation subset is refused."""
        return not without_validation(cfg)

    def classes(self, split: SplitData) -> list[str]:
        """The model's classes, in label order."""
        return split.classes

    def write_start(self, ctx: RunContext) -> None:
        """The files a new start writes before its config.yaml."""
        from leafnet.data.prepare import write_split

        io_guard(lambda: write_split(ctx.run, ctx.split), f"the data files in {ctx.run.root}")

    def announce(self, ctx: RunContext) -> str:
        """The lines a started or resumed run prints before training."""
        from leafnet.data.prepare import summarize

        run = ctx.run
        return (f"run folder: {run.root}  (if interrupted, rerun the same command with --run-dir {run.root} "
                f"to resume)\n{summarize(ctx.split)}")

    def image_set(self, ctx: RunContext, paths: list[str], labels):
        """The images of one subset, as the trainer's set is built on."""
        from leafnet.data.pipeline import ImageSet

        return ImageSet(paths, labels, len(ctx.classes), ctx.cfg.data.image_size)


CLASSIFIER = RunKind()


class Peers(Protocol):
    """The other processes of a run trained by several (a multi-worker cluster)."""

    writes: bool   # this process writes the run folder (the chief)

    def refused(self, error: LeafnetError) -> None:
        """This process (the chief) cannot take the run: tell the others."""

    def claim(self, claim: Callable[[], tuple[bool, bool]]) -> tuple[bool, bool]:
        """``claim()`` on the writer, its ``(resuming, complete)`` agreed by every process."""

    def same_data(self, split: SplitData) -> None:
        """Refuse, everywhere at once, processes that see different data."""


@dataclass
class RunContext:
    """A run about to train: its resolved config, folder, split and built model."""

    cfg: Config
    spec: Any
    run: RunDir
    kind: RunKind
    resuming: bool
    complete: bool
    writes: bool = True           # this process writes the run folder
    split: SplitData | None = None
    model: Any = None
    started: float = 0.0          # time.perf_counter() when the trainer started

    @property
    def classes(self) -> list[str]:
        return self.kind.classes(self.split)

    def image_sets(self, folder: RunDir | None = None, progress: bool = False):
        """The train and val sets (val None without validation images), cached in ``folder``'s
        cache (the run folder's by default); returns ``(train, val, cache mode)``."""
        cache = (folder or self.run).cache
        train_paths, train_labels, train_hashes = self.split.subset(val=False)
        val_paths, val_labels, val_hashes = self.split.subset(val=True)
        train = self.kind.image_set(self, train_paths, train_labels)
        mode = train.cache(self.cfg.data.cache, cache, train_hashes, progress=progress, label="train")
        val = None
        if val_paths:
            val = self.kind.image_set(self, val_paths, val_labels)
            val.cache(mode, cache, val_hashes, progress=progress, label="val")
        return train, val, mode

    def fit(self, trainer) -> list[dict]:
        """Run ``trainer`` (resuming from the folder's backup), timing it; its history."""
        self.started = time.perf_counter()
        return trainer.fit()

    def finish(self, model, train, val, history: list[dict], test=None) -> None:
        """Write model.keras, metrics.json and the plots of the trained run."""
        from leafnet.train.finish import finish_run

        finish_run(self.run, self.cfg, model, self.spec, list(self.classes), train, val, history,
                   time.perf_counter() - self.started, test=test)


@contextlib.contextmanager
def hold_run(root: Path, peers: Peers | None = None) -> Iterator[None]:
    """Hold the run folder's lock for the block in the process that writes it (the workers of a
    cluster write none); a refused lock is told to the peers."""
    if peers is not None and not peers.writes:
        yield
        return
    lock = contextlib.ExitStack()
    try:
        lock.enter_context(runlock.hold(root))
    except LeafnetError as e:
        if peers is not None:
            peers.refused(e)
        raise
    with lock:
        yield


def prepare_run(cfg: Config, spec, run: RunDir, kind: RunKind = CLASSIFIER, *, split: SplitData | None = None,
                peers: Peers | None = None, scope: Callable[[], Any] | None = None) -> RunContext:
    """Claim or resume ``run`` (held by :func:`hold_run`), ready its data and build its model.

    A new start scans and splits ``cfg.data`` (or takes ``split``, made by the caller) and
    writes classes.json, split.csv, data_report.json, the kind's own files and config.yaml
    last, once the model is built: a refused start leaves nothing behind. A resume reads
    the stored split back and verifies it. A finished run returns at once, ``complete``.

    Args:
        cfg: the resolved config.
        spec: its backbone.
        run: the run folder.
        kind: what the run trains.
        split: a scan and split made by the caller; None to scan ``cfg.data``.
        peers: the other processes of a cluster; None on one process.
        scope: the distribution strategy's scope to build the model in; None for none.

    Returns:
        The :class:`RunContext`.
    """
    verbose = cfg.run.verbose
    writes = peers is None or peers.writes

    def claim() -> tuple[bool, bool]:
        resuming = check_existing(run, cfg)
        if resuming:
            kind.check_resumed(run)
        return resuming, resuming and kind.is_complete(run)

    resuming, complete = claim() if peers is None else peers.claim(claim)
    ctx = RunContext(cfg, spec, run, kind, resuming, complete, writes)
    if complete:
        if verbose and writes:
            console.info(kind.complete_note(run))
        return ctx

    from leafnet.train.trainer import plan_phases

    plan_phases(cfg)
    if resuming:
        from leafnet.data.verify import data_roots, new_files_note, verify_resume

        run.clean_temporaries()
        added = verify_resume(run, data_roots(cfg.data), labelled=kind.labelled)
        split = kind.read_split(run)
        if added and verbose:
            console.info(new_files_note(added))
    elif split is None:
        split = kind.scan(cfg, progress=bool(verbose) and writes)
    ctx.split = split
    if kind.needs_val(cfg) and not split.subset(val=True)[0]:
        raise DataError(kind.empty_val)
    if peers is not None:
        peers.same_data(split)
    with scope() if scope is not None else contextlib.nullcontext():
        # The model (and its weights: an offline ImageNet download fails here) comes before the
        # run folder, so a refused start leaves nothing behind.
        ctx.model = build_model(cfg, spec, len(ctx.classes))
    if writes and not resuming:
        run.create()
        kind.write_start(ctx)
        io_guard(lambda: write_text(run.config, kind.config_header + to_yaml(stored_form(cfg))), str(run.config))
    if writes and verbose:
        console.info(kind.announce(ctx))
    return ctx

