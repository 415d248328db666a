"""Every setting of a leafnet run, as dataclasses, with YAML loading and validation.

Defaults live here and nowhere else. Precedence: built-in defaults < ``--config``
YAML < explicit flags and ``--set section.key=value``. Unknown keys, wrong types and
impossible values are refused before any work starts, with one line naming the key,
what is allowed and what was received.

Example:
    >>> cfg = load_config(None, overrides=["transfer.lr=3e-4", "model.backbone=b0"])
    >>> cfg.transfer.lr
    0.0003
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from leafnet.errors import ConfigError


def setting(default: Any, help: str, *, choices: tuple | None = None,
            ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None,
            aliases: dict[str, str] | None = None) -> Any:
    """A dataclass field that carries its documentation and its allowed values.

    ``aliases`` maps other accepted spellings (e.g. tensorflow-addons class names,
    compared case-insensitively) to one of ``choices``.
    """
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt,
            "aliases": {k.lower(): v for k, v in (aliases or {}).items()}}
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Where the images are and how they are read."""

    data: Optional[str] = setting(None, "folder with one sub-folder per class (split into train/val)")
    train: Optional[str] = setting(None, "folder of class sub-folders used for training only (with `val`)")
    val: Optional[str] = setting(None, "folder of class sub-folders used for validation only (with `train`)")
    test: Optional[str] = setting(None, "folder of class sub-folders held out for testing: never used for training or "
                                  "model selection, evaluated once at the end (metrics.json's test block)")
    demo: bool = setting(False, "train on the embedded synthetic leaves (generated on first use)")
    val_split: float = setting(1 / 6, "fraction of each class held out for validation (5:1 by default; 0: no "
                               "validation, every image trains and the last epoch is the model)", ge=0.0, lt=1.0)
    image_size: Optional[int] = setting(None, "square input size in pixels (null: the backbone's default)", ge=16, le=2048)
    batch_size: int = setting(32, "images per training step", ge=1, le=65536)
    cache: str = setting("auto", "keep decoded images in memory, in a file in the run folder, or re-read them every epoch "
                         "(auto: memory when they fit in a quarter of RAM, else disk)",
                         choices=("auto", "memory", "disk", "none"))
    balance: str = setting("none", "for imbalanced folders: weight the loss by inverse class frequency (weights), "
                           "or draw every class equally often in each epoch (oversample)",
                           choices=("none", "weights", "oversample"), aliases={"balanced": "weights"})
    cache_features: str = setting("auto", "transfer phase with a frozen pretrained backbone: compute its features once "
                                  "and train the head on them (auto: when exact, i.e. no in-model augmentation; on: "
                                  "also with augmentation, from feature_copies augmented copies; off)",
                                  choices=("auto", "on", "off"))
    feature_copies: int = setting(1, "augmented copies per image in the feature cache (cache_features: on), "
                                  "cycled over the epochs", ge=1, le=100)


@dataclass
class AugmentConfig:
    """In-model augmentation layers, active only while training."""

    flip: str = setting("horizontal_and_vertical", "random flips", choices=("none", "horizontal", "vertical", "horizontal_and_vertical"))
    rotation: float = setting(0.1, "random rotation, as a fraction of a full turn (0.5 = up to +-180 degrees)", ge=0.0, le=0.5)
    zoom: float = setting(0.1, "random zoom in or out by up to this fraction", ge=0.0, lt=1.0)
    translation: float = setting(0.1, "random shift by up to this fraction of the image size", ge=0.0, lt=1.0)
    contrast: float = setting(0.0, "random contrast change by up to this factor", ge=0.0, le=1.0)
    brightness: float = setting(0.0, "random brightness change by up to this fraction of the value range", ge=0.0, le=1.0)
    crop: float = setting(0.0, "random crop removing up to this fraction of each side, resized back (identity at inference)", ge=0.0, lt=1.0)
    noise: float = setting(0.0, "Gaussian noise standard deviation, as a fraction of the 0..255 range", ge=0.0, le=1.0)
    randaugment: int = setting(0, "RandAugment: number of random operations per image (0: off)", ge=0, le=10)
    randaugment_factor: float = setting(0.5, "RandAugment strength", gt=0.0, le=1.0)
    mixup: float = setting(0.0, "MixUp: alpha of the Beta distribution of the mixing weight (0: off)", ge=0.0, le=10.0)
    cutmix: float = setting(0.0, "CutMix: alpha of the Beta distribution of the patch size (0: off)", ge=0.0, le=10.0)
    mix_off_epochs: int = setting(0, "turn MixUp/CutMix off for the last N epochs of each phase", ge=0)


@dataclass
class ModelConfig:
    """The backbone and the classifier head."""

    backbone: str = setting("efficientnet-b0", "backbone name or alias (leafnet backbones lists them)")
    weights: Optional[str] = setting(None, "imagenet (downloaded once by Keras), none (random init), a path to a "
                                     ".keras / .weights.h5 file or a leafnet run folder, or hub:PRESET "
                                     "(null: the backbone's ImageNet weights where it has them, else none)")
    pooling: str = setting("avg", "global pooling of the backbone's feature map (max suits objects on varied backgrounds)",
                           choices=("avg", "max"))
    dense_units: int = setting(0, "units of the optional dense layer in the head (0: none)", ge=0, le=65536)
    activation: str = setting("relu", "activation of the head's dense layer", choices=("relu", "swish", "gelu", "mish", "elu", "tanh"))
    dropout: float = setting(0.2, "dropout rate before the classifier", ge=0.0, lt=1.0)
    head_batchnorm: bool = setting(True, "BatchNormalization after global average pooling")
    feature_layer: Optional[str] = setting(None, "use the backbone only up to this layer (e.g. alexnet's conv4_relu) as a "
                                           "feature extractor under an MLP head: Flatten -> Dense mlp_units... -> classes "
                                           "(null: the whole backbone under the pooling head)")
    mlp_units: Union[int, str] = setting("4096,4096", "with feature_layer: widths of the MLP head's dense layers, "
                                         "comma-separated (0: Flatten -> classes)")


@dataclass
class PhaseConfig:
    """One training phase. ``transfer`` trains the head on a frozen backbone; ``finetune``
    unfreezes the last ``blocks`` blocks of the backbone (BatchNormalization stays frozen)."""

    epochs: int = setting(10, "maximum epochs of this phase", ge=0, le=100000)
    lr: float = setting(1e-2, "learning rate", gt=0.0, le=10.0)
    optimizer: str = setting("adam", "optimizer (tensorflow-addons names accepted: RectifiedAdam, ...)",
                             choices=("adam", "adamw", "sgd", "rmsprop", "nadam", "lion", "radam", "ranger"),
                             aliases={"RectifiedAdam": "radam", "RAdam": "radam", "Ranger": "ranger", "Adam": "adam", "AdamW": "adamw",
                                     "SGD": "sgd", "RMSprop": "rmsprop", "Nadam": "nadam", "Lion": "lion"})
    weight_decay: float = setting(0.0, "decoupled weight decay (any optimizer); 0 disables", ge=0.0, le=1.0)
    momentum: float = setting(0.9, "momentum (sgd, rmsprop)", ge=0.0, lt=1.0)
    nesterov: bool = setting(False, "Nesterov momentum (sgd)")
    beta_1: Optional[float] = setting(None, "first-moment decay of Adam-family optimizers (null: the optimizer's default)", gt=0.0, lt=1.0)
    beta_2: Optional[float] = setting(None, "second-moment decay of Adam-family optimizers (null: default)", gt=0.0, lt=1.0)
    epsilon: Optional[float] = setting(None, "epsilon of Adam-family optimizers (null: default)", gt=0.0, le=1.0)
    lookahead: bool = setting(False, "wrap the optimizer in Lookahead (ranger is radam with lookahead)")
    sync_period: int = setting(6, "Lookahead: fast steps between synchronisations", ge=1)
    slow_step_size: float = setting(0.5, "Lookahead: step of the slow weights towards the fast ones", gt=0.0, le=1.0)
    sma_threshold: float = setting(5.0, "RAdam/Ranger: length of the approximated SMA above which the update is rectified", ge=0.0)
    loss: str = setting("crossentropy", "loss: crossentropy, focal (Keras' CategoricalFocalCrossentropy) or "
                        "sigmoid_focal (tensorflow-addons' SigmoidFocalCrossEntropy)",
                        choices=("crossentropy", "focal", "sigmoid_focal"),
                        aliases={"categorical_crossentropy": "crossentropy", "CategoricalCrossentropy": "crossentropy",
                                 "CategoricalFocalCrossentropy": "focal", "categorical_focal_crossentropy": "focal",
                                 "SigmoidFocalCrossEntropy": "sigmoid_focal", "sigmoid_focal_crossentropy": "sigmoid_focal"})
    label_smoothing: float = setting(0.0, "label smoothing (any loss)", ge=0.0, lt=1.0)
    focal_alpha: Optional[float] = setting(0.25, "focal losses: class weighting alpha (null: none)", ge=0.0, le=1.0)
    focal_gamma: float = setting(2.0, "focal losses: focusing parameter gamma (0: plain cross-entropy)", ge=0.0, le=10.0)
    schedule: str = setting("constant", "learning-rate schedule over the phase",
                            choices=("constant", "triangular", "triangular2", "exp_range", "cosine", "onecycle"),
                            aliases={"TriangularCyclicalLearningRate": "triangular",
                                     "Triangular2CyclicalLearningRate": "triangular2",
                                     "ExponentialCyclicalLearningRate": "exp_range", "CosineDecay": "cosine",
                                     "WarmupCosineDecay": "cosine", "OneCycle": "onecycle", "OneCycleLR": "onecycle"})
    max_lr: Optional[float] = setting(None, "cyclical schedules: the upper learning rate (lr is the lower one)", gt=0.0, le=10.0)
    step_size: float = setting(2.0, "cyclical schedules: half a cycle, in step_unit", gt=0.0)
    step_unit: str = setting("epochs", "unit of step_size and warmup (epochs are converted with steps per epoch)",
                             choices=("epochs", "steps"))
    gamma: float = setting(1.0, "exp_range schedule: decay of the amplitude per step", gt=0.0, le=1.0)
    warmup: float = setting(0.0, "cosine schedule: linear warmup length, in step_unit", ge=0.0)
    monitor: str = setting("val_loss", "metric watched by early stopping, plateau LR and the best checkpoint",
                           choices=("val_loss", "val_accuracy"))
    early_stopping: int = setting(5, "stop the phase after this many epochs without improvement (0: never), "
                                  "then restore the phase's best weights", ge=0)
    reduce_lr_patience: Optional[int] = setting(None, "divide the lr by reduce_lr_factor after this many epochs without "
                                                "improvement (0: off; null: 2 in the fine-tune phase when its schedule "
                                                "is constant, else off)", ge=0)
    reduce_lr_factor: float = setting(0.2, "factor applied by the plateau schedule", gt=0.0, lt=1.0)
    min_lr: float = setting(1e-7, "lower bound for the plateau schedule", ge=0.0)
    blocks: Union[int, str] = setting(1, "fine-tune phase only: unfreeze the last N backbone blocks (0: no fine-tune phase, all: every block)")
    unfreeze_every: int = setting(0, "fine-tune phase only: gradual unfreezing, one more block every N epochs up to `blocks` (0: all at once)", ge=0)
    lr_decay: float = setting(1.0, "fine-tune phase only: discriminative learning rates, each block's lr is this factor "
                              "times the lr of the block above it (1: one lr for all, as fastai's slice(lo, hi))", gt=0.0, le=1.0)
    use_ema: bool = setting(False, "keep an exponential moving average of the weights and validate/save it")
    ema_momentum: float = setting(0.99, "EMA momentum", gt=0.0, lt=1.0)


def _transfer_default() -> PhaseConfig:
    return PhaseConfig(epochs=10, lr=1e-2)


def _finetune_default() -> PhaseConfig:
    return PhaseConfig(epochs=10, lr=1e-4)


# What ``reduce_lr_patience: null`` means in the fine-tune phase with a constant schedule.
FINETUNE_PLATEAU_PATIENCE = 2


@dataclass
class RunConfig:
    """Where the run is written and how it is seeded."""

    dir: Optional[str] = setting(None, "run folder (null: runs/<date>-<time>-<backbone>); rerunning with the same folder resumes")
    seed: int = setting(42, "seed for the split, the shuffle order and every random layer", ge=0, le=2**31 - 1)
    verbose: int = setting(1, "0: quiet, 1: progress bars, 2: one line per epoch", ge=0, le=2)
    precision: str = setting("float32", "compute dtype policy: float32, mixed_float16 (GPUs; loss scaling is "
                             "automatic) or mixed_bfloat16 (GPUs, TPUs, CPUs with AVX512_BF16); the output "
                             "layer stays float32", choices=("float32", "mixed_float16", "mixed_bfloat16"))
    jit_compile: bool = setting(False, "compile the train step with XLA (often faster on a GPU; much slower on CPUs)")
    distribute: str = setting("none", "tf.distribute strategy: none, mirrored (all local GPUs), multiworker (the machines "
                              "TF_CONFIG names), tpu; data.batch_size "
                              "is per replica and the learning rates scale with the replica count",
                              choices=("none", "mirrored", "multiworker", "tpu"))
    sync_batchnorm: bool = setting(False, "with several replicas, BatchNormalization layers that train use the "
                                   "statistics of the global batch (all-reduced every step) instead of each replica's")
    fused_batchnorm: bool = setting(True, "run BatchNormalization through TensorFlow's fused kernel (the same "
                                    "numbers as Keras' layer; EfficientNet trains ~1.5x faster on CPUs)")
    fused_swish: bool = setting(True, "differentiate swish in one XLA-fused loop instead of six TensorFlow ops "
                                "(the same numbers; EfficientNet-B0 trains ~1.2x faster on CPUs; not used on GPUs)")


@dataclass
class Config:
    """A complete leafnet run configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    transfer: PhaseConfig = field(default_factory=_transfer_default)
    finetune: PhaseConfig = field(default_factory=_finetune_default)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}


# --------------------------------------------------------------------------- validation

def _section_classes() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in SECTIONS}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        text = " or ".join(names)
        return text + " or null" if type(None) in typing.get_args(tp) else text
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` as type ``tp`` or raise a ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"{key} must be {_type_name(tp)}; received {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # an integer with hundreds of digits
                value = math.inf
            if math.isfinite(value):
                return value
            raise ConfigError(f"{key} must be a finite number; received {value!r}")
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key} must be {_type_name(tp)}; received {value!r}")


def _canonical_choice(value: Any, meta: dict) -> Any:
    if isinstance(value, str) and meta.get("aliases"):
        return meta["aliases"].get(value.lower(), value)
    return value


def _check_bounds(key: str, value: Any, meta: dict) -> None:
    if value is None or isinstance(value, (str, bool)):
        if meta.get("choices") and value is not None and value not in meta["choices"]:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, meta['choices']))}; received {value!r}")
        return
    bounds = [("ge", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"),
              ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<")]
    for name, ok, sym in bounds:
        bound = meta.get(name)
        if bound is not None and not ok(value, bound):
            raise ConfigError(f"{key} must be {sym} {bound:g}; received {value!r}")


def _unknown(key: str, allowed: typing.Iterable[str]) -> ConfigError:
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _apply_section(section_obj: Any, section: str, values: Any) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"config section {section!r} must be a mapping of keys to values; received {values!r}")
    hints = typing.get_type_hints(type(section_obj))
    fields = {f.name: f for f in dataclasses.fields(section_obj)}
    for name, value in values.items():
        key = f"{section}.{name}"
        if name not in fields:
            raise _unknown(key, [f"{section}.{n}" for n in fields])
        coerced = _canonical_choice(_coerce(key, value, hints[name]), fields[name].metadata)
        _check_bounds(key, coerced, fields[name].metadata)
        setattr(section_obj, name, coerced)


def apply_dict(cfg: Config, values: Any, origin: str = "config") -> Config:
    """Overlay a nested mapping ``{section: {key: value}}`` on ``cfg`` (validated)."""
    if values is None:
        return cfg
    if not isinstance(values, dict):
        raise ConfigError(f"{origin} must be a mapping of sections ({', '.join(SECTIONS)}); received {type(values).__name__}")
    for section, section_values in values.items():
        if section not in SECTIONS:
            raise _unknown(str(section), SECTIONS)
        _apply_section(getattr(cfg, section), section, section_values)
    return cfg


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``section.key=value`` into parts; the value is read as YAML (``3e-4``, ``true``, ``null``)."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.key=value; received {text!r}")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set expects section.key=value with one dot, e.g. transfer.lr=3e-4; received {text!r}")
    try:
        value = safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts[0], parts[1], value


class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``3e-4`` as a number (YAML 1.2), as users write it."""


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_load(stream: Any) -> Any:
    """``yaml.safe_load`` with YAML 1.2 exponent floats; never constructs Python objects.

    Raises:
        yaml.YAMLError: not YAML, or nested too deeply for PyYAML's recursive parser.
    """
    try:
        return yaml.load(stream, Loader=SafeLoader)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


def read_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file with ``yaml.safe_load`` (never the unsafe loader)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None


def load_config(path: str | os.PathLike | None = None, flags: dict[str, Any] | None = None,
                overrides: typing.Sequence[str] = ()) -> Config:
    """Build a validated Config: defaults < YAML file < ``flags`` < ``overrides``.

    Args:
        path: optional YAML file with sections ``data``, ``augment``, ``model``,
            ``transfer``, ``finetune``, ``run``.
        flags: dotted keys to values, e.g. ``{"model.backbone": "b4"}``; None values are skipped.
        overrides: ``section.key=value`` strings as given to ``--set``.

    Returns:
        The Config, checked for unknown keys, types and ranges.
    """
    cfg = Config()
    if path is not None:
        apply_dict(cfg, read_yaml(path), origin=str(path))
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in (flags or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".")
        nested.setdefault(section, {})[key] = value
    apply_dict(cfg, nested, origin="flags")
    for text in overrides:
        section, key, value = parse_override(text)
        apply_dict(cfg, {section: {key: value}}, origin="--set")
    validate(cfg)
    return cfg


def config_from_dict(values: dict) -> Config:
    """A validated Config from a nested mapping (e.g. a run's ``config.yaml``)."""
    cfg = apply_dict(Config(), values)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Checks that involve several keys."""
    d = cfg.data
    if d.data and (d.train or d.val):
        raise ConfigError("give either data.data (one folder, split automatically) or data.train with data.val; received both")
    if bool(d.train) != bool(d.val):
        raise ConfigError("data.train and data.val go together; received only "
                          + ("data.train" if d.train else "data.val"))
    if d.test and not (d.data or d.train or d.demo):
        raise ConfigError("data.test is a held-out folder beside data.data or data.train/data.val; received it alone")
    for key in ("data", "train", "val", "test"):
        if getattr(d, key) == "":
            raise ConfigError(f"data.{key} must be a folder path; received an empty string")
    blocks = cfg.finetune.blocks
    if isinstance(blocks, str) and blocks != "all":
        raise ConfigError(f"finetune.blocks must be an integer >= 0 or 'all'; received {blocks!r}")
    if isinstance(blocks, int) and blocks < 0:
        raise ConfigError(f"finetune.blocks must be an integer >= 0 or 'all'; received {blocks}")
    if cfg.transfer.blocks != PhaseConfig().blocks:
        raise ConfigError("transfer.blocks is not used (the transfer phase freezes the whole backbone); "
                          "set finetune.blocks instead")
    for name in ("transfer", "finetune"):
        p: PhaseConfig = getattr(cfg, name)
        if p.schedule in ("triangular", "triangular2", "exp_range"):
            if p.max_lr is None:
                raise ConfigError(f"{name}.schedule={p.schedule} cycles between {name}.lr and {name}.max_lr; set {name}.max_lr")
            if p.max_lr <= p.lr:
                raise ConfigError(f"{name}.max_lr must be > {name}.lr ({p.lr:g}); received {p.max_lr:g}")
        if p.reduce_lr_patience and p.schedule != "constant":
            raise ConfigError(f"{name}.reduce_lr_patience works with schedule constant only; received schedule={p.schedule} "
                              "(a schedule decides the lr itself)")
        if name == "transfer" and (p.unfreeze_every or p.lr_decay != 1.0):
            raise ConfigError("transfer.unfreeze_every and transfer.lr_decay are fine-tune settings; set them under finetune")
    if not cfg.model.backbone:
        raise ConfigError("model.backbone must be a backbone name; received an empty string")
    if cfg.model.weights == "":
        raise ConfigError("model.weights must be imagenet, none or a path; received an empty string")
    if cfg.model.feature_layer == "":
        raise ConfigError("model.feature_layer must be a layer name or null; received an empty string")
    mlp_units(cfg.model.mlp_units)


def mlp_units(value: int | str) -> list[int]:
    """The widths of ``model.mlp_units`` (``"4096,4096"``, ``512``, ``0`` for none) as a list.

    Raises:
        ConfigError: not comma-separated positive integers.
    """
    text = str(value).strip()
    if text in ("0", ""):
        return []
    try:
        units = [int(u) for u in text.split(",")]
    except ValueError:
        units = []
    if not units or any(u < 1 or u > 65536 for u in units):
        raise ConfigError(f"model.mlp_units must be comma-separated integers in 1..65536 (e.g. 4096,4096) or 0; "
                          f"received {value!r}")
    return units


def resolve_defaults(cfg: Config, *, has_imagenet: bool) -> list[str]:
    """Fill the keys whose default depends on other choices (left null); return what was
    chosen for the user, one sentence each, for the console.

    A default yields to what the user set: a schedule other than constant turns the
    fine-tune plateau off; a backbone without ImageNet weights starts from random ones.
    """
    notes = []
    if cfg.model.weights is None:
        cfg.model.weights = "imagenet" if has_imagenet else "none"
        if not has_imagenet:
            notes.append(f"{cfg.model.backbone} has no pretrained weights: training from scratch (--weights none)")
    for name in ("transfer", "finetune"):
        p: PhaseConfig = getattr(cfg, name)
        if p.reduce_lr_patience is None:
            plateau = name == "finetune" and p.schedule == "constant"
            p.reduce_lr_patience = FINETUNE_PLATEAU_PATIENCE if plateau else 0
            if name == "finetune" and not plateau:
                notes.append(f"finetune.schedule={p.schedule} sets the learning rate, so the plateau reduction "
                             "(finetune.reduce_lr_patience) is off")
    return notes


def has_data_source(cfg: Config) -> bool:
    d = cfg.data
    return bool(d.demo or d.data or d.train)


def describe(cfg: Config | None = None) -> str:
    """The documented default config as commented YAML (``leafnet config``)."""
    cfg = cfg or Config()
    lines = ["# leafnet configuration: every key, its default and what it does.",
             "# Precedence: defaults < --config FILE < flags and --set section.key=value", ""]
    for section in SECTIONS:
        obj = getattr(cfg, section)
        lines.append(f"{section}:  # {(type(obj).__doc__ or '').strip().splitlines()[0]}")
        for f in dataclasses.fields(obj):
            value = yaml.safe_dump(getattr(obj, f.name), default_flow_style=True).strip()
            value = value.removesuffix("\n...").removesuffix("...").strip()
            extra = f" [{'|'.join(map(str, f.metadata['choices']))}]" if f.metadata.get("choices") else ""
            lines.append(f"  {f.name}: {value}  # {f.metadata.get('help', '')}{extra}")
        lines.append("")
    return "\n".join(lines)
