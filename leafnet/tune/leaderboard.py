"""What ``leafnet search`` prints: one line per trial while it runs, and the leaderboard at the end.

The leaderboard is a ``rich`` table rendered to text: its columns line up in a pipe as on a
terminal, and it carries colour only when stdout is a terminal.
"""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leafnet.tune.search import SearchResult

METRICS = ("val_loss", "val_accuracy")


def format_value(v) -> str:
    """A hyperparameter value as the leaderboard and the trial lines show it."""
    if isinstance(v, float):
        return f"{v:.3g}"
    return "-" if v is None else str(v)


def _metric(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def trial_started(trial_id: str, values: dict) -> str:
    """``trial 3: transfer.lr=0.00316  data.batch_size=16``."""
    return f"trial {trial_id}: " + "  ".join(f"{k}={format_value(v)}" for k, v in values.items())


def trial_ended(trial_id: str, metrics: dict | None, epochs, seconds: float, reason: str = "") -> str:
    """``trial 3: val_loss 1.2345  val_accuracy 0.5000  (4 epochs, 12 s)``, or why it failed."""
    if metrics is None:
        return f"trial {trial_id}: FAILED ({reason}) after {seconds:.0f} s"
    done = f"{epochs} epoch{'' if epochs == 1 else 's'}, " if epochs is not None else ""
    return f"trial {trial_id}: " + "  ".join(f"{k} {_metric(metrics.get(k))}" for k in METRICS) + \
        f"  ({done}{seconds:.0f} s)"


def leaderboard(result: SearchResult, top: int = 10, color: bool | None = None) -> str:
    """The trials ranked by the objective (failed ones last) as an aligned table.

    Args:
        result: what :func:`leafnet.tune.search.search` returned.
        top: at most this many rows; a last line counts the others.
        color: bold header and the best row in green; None: only when stdout is a terminal.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    obj = result.objective
    done = [r for r in result.trials if r["status"] == "COMPLETED" and r[obj] is not None]
    done.sort(key=lambda r: r[obj], reverse=result.maximize)
    ranked = done + [r for r in result.trials if r not in done]
    color = sys.stdout.isatty() if color is None else color
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    metrics = [obj, *[m for m in METRICS if m != obj]]
    for name in ("#", "trial", *result.keys, *metrics, "epochs"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for i, r in enumerate(ranked[:top], 1):
        rank = str(i) if r in done else "-"
        table.add_row(rank, str(r["trial"]), *(format_value(r[k]) for k in result.keys),
                      *(_metric(r[m]) for m in metrics), format_value(r["epochs"]), r["status"],
                      style="green" if i == 1 and r in done else None)
    buf = io.StringIO()
    # wide enough never to wrap; no colour codes unless asked for
    Console(file=buf, width=100_000, force_terminal=color, no_color=not color,
            color_system="standard" if color else None).print(table)
    lines = [line.rstrip() for line in buf.getvalue().splitlines()]
    if len(ranked) > top:
        lines.append(f"({len(ranked) - top} more in {result.root / 'trials.csv'})")
    failed = [r for r in result.trials if r["status"] != "COMPLETED"]
    if failed:
        lines.append(f"{len(failed)} trial(s) failed: "
                     + "; ".join(f"{r['trial']}: {r['reason'][:80]}" for r in failed[:3]))
    return "\n".join(lines)


def summary(result: SearchResult, color: bool | None = None) -> str:
    """The leaderboard and where the search's files are (what ``leafnet search`` ends with)."""
    root = result.root
    if result.worker:
        return f"worker done; the chief writes the results to {root}"
    lines = [leaderboard(result, color=color), f"trials: {root / 'trials.csv'}   plot: {root / 'plots' / 'search.png'}"]
    if result.best_config:
        lines.append(f"best config: {result.best_config}")
        lines.append(f"  train it: leafnet fit --config {result.best_config} --run-dir DIR")
    return "\n".join(lines)
