"""The settings of a leafnet run as dataclasses: every key, its default, help and allowed values.

Defaults live here and nowhere else. ``setting()`` keeps a key's help, choices, bounds and
accepted aliases in one field, read by validation (``leafnet.config.keys``), ``leafnet config``
and ``--help``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import yaml


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
    """One training phase: transfer (the head on a frozen backbone) or finetune (the last blocks unfrozen).

    ``finetune`` unfreezes the last ``blocks`` blocks of the backbone; BatchNormalization stays frozen.
    """

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
        """The config as nested plain dicts, ``{section: {key: value}}``."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The config as YAML, in field order (a run's ``config.yaml``)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# section name -> its dataclass name, in the order of the YAML file
SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
