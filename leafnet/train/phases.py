"""The phase plan of a run, as pure functions of the config: which phases run, how many
epochs each, which blocks train at each epoch, when MixUp/CutMix mix, how many epochs one
``fit`` call runs, and where a resumed run picks up. No Keras here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leafnet.config import AugmentConfig, Config, PhaseConfig
from leafnet.errors import LeafnetError


@dataclass
class Phase:
    """One phase of the recipe: ``transfer`` or ``finetune``, with its settings."""

    name: str
    cfg: PhaseConfig


def plan_phases(cfg: Config) -> list[Phase]:
    """The phases a config asks for: transfer (if it has epochs), then fine-tune (if it has
    epochs and unfreezes at least one block)."""
    phases = []
    if cfg.transfer.epochs > 0:
        phases.append(Phase("transfer", cfg.transfer))
    if cfg.finetune.epochs > 0 and cfg.finetune.blocks != 0:
        phases.append(Phase("finetune", cfg.finetune))
    if not phases:
        raise LeafnetError("nothing to train: transfer.epochs is 0 and the fine-tune phase is off "
                           "(finetune.epochs or finetune.blocks is 0)")
    return phases


def stage_blocks(phase: Phase, phase_epoch: int, blocks: int | str, block_count: int) -> int | str:
    """Blocks unfrozen at a phase epoch: all of ``blocks`` (``finetune.blocks``) at once, or
    one more every ``unfreeze_every`` epochs (gradual unfreezing).

    Args:
        phase: the phase.
        phase_epoch: the epoch within the phase, from 0.
        blocks: ``finetune.blocks``, a count or ``"all"``.
        block_count: how many blocks the backbone has (what ``"all"`` means).
    """
    every = phase.cfg.unfreeze_every
    if phase.name != "finetune" or not every:
        return blocks
    total = block_count if blocks == "all" else int(blocks)
    n = min(total, 1 + phase_epoch // every)
    return "all" if n == total and blocks == "all" else n


def mixing(augment: AugmentConfig, phase: Phase, phase_epoch: int) -> bool:
    """Whether MixUp/CutMix mix the batches of this phase epoch (off for the last
    ``mix_off_epochs`` epochs of a phase)."""
    off = augment.mix_off_epochs and phase_epoch >= phase.cfg.epochs - augment.mix_off_epochs
    return bool(augment.mixup or augment.cutmix) and not off


def one_at_a_time(phase: Phase, distributed: bool) -> bool:
    """Epochs run one at a time, not inside one ``fit`` call: with EMA (``fit`` moves the
    weights to their average when it ends, and each epoch must be judged on them) and on
    leafnet's own steps (``distributed``)."""
    return distributed or bool(phase.cfg.use_ema)


def segment_epochs(phase: Phase, phase_epoch: int, blocks: int | str, block_count: int, augment: AugmentConfig,
                   distributed: bool = False) -> int:
    """How many epochs the ``fit`` call starting at ``phase_epoch`` runs: all the epochs
    left with the same unfrozen blocks and mixing (one, see :func:`one_at_a_time`)."""
    if one_at_a_time(phase, distributed):
        return 1
    k, end = phase_epoch, phase_epoch + 1
    while (end < phase.cfg.epochs
           and stage_blocks(phase, end, blocks, block_count) == stage_blocks(phase, k, blocks, block_count)
           and mixing(augment, phase, end) == mixing(augment, phase, k)):
        end += 1
    return end - k


@dataclass(frozen=True)
class PhaseStart:
    """Where phase ``index`` of the plan starts, given a run's committed state.

    Attributes:
        resumed: the phase was under way: it continues at ``phase_epoch`` from the backup.
        phase_epoch: the phase epoch (from 0) its first epoch has.
        with_optimizer: a resumed phase restores the optimizer state too (not when a
            gradual-unfreezing stage starts at that epoch: its optimizer is fresh).
        restore_previous: a later phase starts from the previous phase's final weights.
    """

    resumed: bool
    phase_epoch: int
    with_optimizer: bool
    restore_previous: bool


def phase_start(index: int, phase: Phase, state: Any, blocks: int | str, block_count: int) -> PhaseStart | None:
    """How phase ``index`` starts from ``state`` (``phase_index``, ``phase_epochs``,
    ``phase_done``, ``weights`` of :class:`leafnet.train.checkpoint.TrainState`), or None
    when it is already done."""
    if index < state.phase_index or (index == state.phase_index and state.phase_done):
        return None
    if index == state.phase_index and state.phase_epochs > 0:
        k = state.phase_epochs
        same_stage = stage_blocks(phase, k - 1, blocks, block_count) == stage_blocks(phase, k, blocks, block_count)
        return PhaseStart(resumed=True, phase_epoch=k, with_optimizer=same_stage, restore_previous=False)
    return PhaseStart(resumed=False, phase_epoch=0, with_optimizer=False,
                      restore_previous=index > 0 and bool(state.weights))
