"""What the trainer prints: the phase heading, one line per epoch, and its notes.

With ``verbose`` 1 on a terminal an epoch gets a progress bar under a heading naming it,
and its line follows, indented; anywhere else (a log file, CI) the epoch's one line names
it. ``verbose`` 0 prints nothing.
"""

from __future__ import annotations

from leafnet import console
from leafnet.console import interactive

EPOCH_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy")


def bars(verbose: int) -> bool:
    """Progress bars within epochs: ``verbose`` 1 on a terminal; else one line per epoch."""
    return verbose == 1 and interactive()


def epoch_label(epoch: int, phase: str, phase_epoch: int, phase_epochs: int) -> str:
    """``epoch 3 (transfer 3/5)``: run epoch and phase epoch from 1."""
    return f"epoch {epoch} ({phase} {phase_epoch}/{phase_epochs})"


def mixing_summary(a) -> str:
    """The batch-level and random-policy augmentations that are on, for the console ("" if none)."""
    on = []
    if a.mixup:
        on.append(f"MixUp (alpha {a.mixup:g})")
    if a.cutmix:
        on.append(f"CutMix (alpha {a.cutmix:g})")
    if (a.mixup or a.cutmix) and a.mix_off_epochs:
        on[-1] += f", off for the last {a.mix_off_epochs} epoch(s) of each phase"
    if a.randaugment:
        on.append(f"RandAugment ({a.randaugment} operations per image, strength {a.randaugment_factor:g})")
    return "; ".join(on)


class EpochLog:
    """The trainer's console at ``verbose`` (0, 1 or 2)."""

    def __init__(self, verbose: int):
        self.verbose = verbose

    @property
    def bars(self) -> bool:
        return bars(self.verbose)

    def say(self, text: str) -> None:
        """One line (a note of the trainer), unless quiet."""
        if self.verbose:
            console.info(text)

    def phase(self, name: str, p, counts: dict[str, int], augment) -> None:
        """The heading of phase ``name`` with settings ``p`` and trainable weights ``counts``."""
        trainable = sum(counts.values())
        detail = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)
        recipe = f"{p.optimizer}{'+lookahead' if p.lookahead else ''}, {p.loss}, lr {p.lr:g}" + (
            f" ({p.schedule})" if p.schedule != "constant" else "")
        self.say(f"phase {name}: up to {p.epochs} epochs, {recipe}, {trainable:,} trainable weights ({detail})")
        mixing = mixing_summary(augment)
        if mixing:
            self.say(f"  augmentation: {mixing}")

    def epoch_start(self, label: str) -> None:
        """Before an epoch: the heading of its progress bar (none without bars)."""
        if self.bars:
            console.info(label)

    def epoch_end(self, label: str, row: dict) -> None:
        """After an epoch: its line, from its history row."""
        if self.verbose:
            shown = "  ".join(f"{key} {row[key]:.4f}" for key in EPOCH_COLUMNS if row[key] is not None)
            line = f"{shown}  lr {row['lr']:.3g}  {row['epoch_seconds']:.1f}s"
            console.info(f"  {line}" if self.bars else f"{label}  {line}")
