"""Defaults that depend on other choices: the keys left null in the dataclasses, filled once the
backbone is known."""

from __future__ import annotations

from leafnet.config.schema import Config, PhaseConfig

# What ``reduce_lr_patience: null`` means in the fine-tune phase with a constant schedule.
FINETUNE_PLATEAU_PATIENCE = 2


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
