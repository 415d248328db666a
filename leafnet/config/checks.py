"""Checks that involve several keys (a data source given twice, a cyclical schedule without its
upper lr, ...), and the parsing of ``model.mlp_units``."""

from __future__ import annotations

from leafnet.config.schema import Config, PhaseConfig
from leafnet.errors import ConfigError


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


def has_data_source(cfg: Config) -> bool:
    """Whether ``cfg`` names images to train on (the demo set, data.data or data.train)."""
    d = cfg.data
    return bool(d.demo or d.data or d.train)
