"""``leafnet lr-find``: the learning-rate range test (Smith 2017; fastai's ``lr_find``).

The learning rate grows exponentially from ``start_lr`` to ``end_lr`` over ``steps``
training steps of the chosen phase; the loss is smoothed with an exponential moving
average (bias-corrected) and the test stops once it explodes (4x its minimum). The
suggestion is fastai's "valley" (see :func:`suggest`), printed with the ``leafnet fit`` flag
that applies it to the phase tested; ``lr_at_min / 10`` is printed too.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leafnet.console import progress_bar
from leafnet.errors import LeafnetError
from leafnet.runs import atomic_path, write_csv

# the fit flag that sets each phase's learning rate
LR_FLAGS = {"transfer": "--lr", "finetune": "--finetune-lr"}


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float
    min_lr_div10: float
    out: Path
    phase: str = "transfer"

    def summary(self) -> str:
        """The suggestion on a line of its own, with the flag that applies it, then the other
        estimate and the files."""
        lr = f"{self.suggested_lr:.1e}"
        return (f"suggested lr: {lr}  (apply it: {LR_FLAGS[self.phase]} {lr})\n"
                f"lr at the loss minimum / 10: {self.min_lr_div10:.1e}\n"
                f"plot: {self.out / 'lr_find.png'}   values: {self.out / 'lr_find.csv'}")


def smooth(losses: list[float], beta: float = 0.98) -> list[float]:
    """Bias-corrected exponential moving average (fastai's)."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** i))
    return out


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float, float]:
    """(valley lr, lr at the minimum / 10) of a smoothed range test.

    The valley (fastai's default suggestion) is found on the longest decreasing run of
    the smoothed loss (the longest strictly decreasing subsequence): the lr a little past
    its first third, well before the loss bottoms out. Robust to the noisy start where a
    valley-slope rule picks a meaningless early dip.
    """
    sm = list(smoothed)
    n = len(sm)
    run = [1] * n
    for i in range(1, n):
        for j in range(i):
            if sm[i] < sm[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
    end = int(np.argmax(run))
    start = end - run[end] + 1
    third = (end - start) / 3
    valley = lrs[min(n - 1, start + int(third) + int(third / 2))]
    return float(valley), float(lrs[int(np.argmin(sm))] / 10)


def lr_find(config: Any = None, phase: str = "transfer", start_lr: float = 1e-7, end_lr: float = 10.0,
            steps: int = 100, out: str | os.PathLike | None = None, **flags: Any) -> LRFindResult:
    """Run the range test for ``phase`` of a fit config; write ``lr_find.csv`` and ``lr_find.png``.

    Args:
        config: as for :func:`leafnet.fit`.
        phase: ``transfer`` (backbone frozen) or ``finetune`` (last blocks unfrozen).
        start_lr, end_lr: the range, exponentially spaced.
        steps: training steps (batches); the data cycles if it has fewer.
        out: folder for the CSV and the plot (default ``runs/lr_find``).

    Returns:
        An :class:`LRFindResult`.
    """
    from leafnet.data.pipeline import ImageSet, epoch_order
    from leafnet.models.classifier import set_trainable
    from leafnet.train.lifecycle import CLASSIFIER, as_config, build_model, require_data, resolve_config
    from leafnet.train.optim import make_loss, make_optimizer

    if phase not in LR_FLAGS:
        raise LeafnetError(f"--phase must be transfer or finetune; received {phase!r}")
    if not (0 < start_lr < end_lr):
        raise LeafnetError(f"lr-find needs 0 < start_lr < end_lr; received {start_lr:g}, {end_lr:g}")
    if steps < 10:
        raise LeafnetError(f"lr-find needs at least 10 steps; received {steps}")
    cfg = as_config(config, **flags)
    require_data(cfg, "lr-find", data="")
    cfg, spec, size = resolve_config(cfg)
    out = Path(out or "runs/lr_find")
    split = CLASSIFIER.scan(cfg, progress=bool(cfg.run.verbose))
    paths, labels, _ = split.subset(val=False)
    train = ImageSet(paths, labels, len(split.classes), size)
    train.cache(cfg.data.cache, out / "cache")
    model = build_model(cfg, spec, len(split.classes))
    pcfg = getattr(cfg, phase)
    set_trainable(model, spec, phase, blocks=cfg.finetune.blocks, from_scratch=cfg.model.weights == "none")
    model.compile(optimizer=make_optimizer(pcfg, start_lr), loss=make_loss(pcfg))

    factor = (end_lr / start_lr) ** (1.0 / (steps - 1))
    lrs, losses = [], []
    best = math.inf
    epoch = 0
    bar = progress_bar(steps, unit_name="step") if cfg.run.verbose else None
    while len(lrs) < steps:
        for x, y in train.dataset(cfg.data.batch_size, epoch_order(len(train), cfg.run.seed, epoch)):
            lr = start_lr * factor ** len(lrs)
            model.optimizer.learning_rate = lr
            loss = float(model.train_on_batch(x, y))
            lrs.append(lr)
            losses.append(loss)
            if bar:
                bar.update(len(lrs), [("loss", loss), ("lr", lr)])
            sm = smooth(losses)[-1]
            best = min(best, sm)
            if not math.isfinite(loss) or sm > 4 * best or len(lrs) >= steps:
                break
        else:
            epoch += 1
            continue
        break
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    if len(finite) < 8:
        raise LeafnetError(f"the loss diverged after {len(finite)} steps; lower --start-lr")
    lrs, losses = [lrs[i] for i in finite], [losses[i] for i in finite]
    smoothed = smooth(losses)
    valley, min10 = suggest(lrs, smoothed)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "lr_find.csv", ["lr", "loss", "smoothed_loss"], zip(lrs, losses, smoothed))
    _plot(lrs, losses, smoothed, valley, min10, out / "lr_find.png", f"{spec.name}, {phase} phase")
    return LRFindResult(lrs, losses, smoothed, valley, min10, out, phase)


def _plot(lrs, losses, smoothed, valley, min10, path, title):
    from leafnet.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(lrs, losses, color="0.75", lw=1, label="loss")
    ax.plot(lrs, smoothed, color="tab:blue", lw=2, label="smoothed loss")
    ax.axvline(valley, color="tab:red", ls="--", label=f"suggested (valley): {valley:.2g}")
    ax.axvline(min10, color="tab:green", ls=":", label=f"minimum / 10: {min10:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    top = np.nanpercentile(smoothed, 95)
    ax.set_ylim(min(smoothed) * 0.9, top * 1.2 if np.isfinite(top) else None)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(f"learning-rate range test ({title})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
