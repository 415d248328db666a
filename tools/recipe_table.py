"""Compare training recipes on the demo leaves: same data, epochs and seed, one change each.

    python tools/recipe_table.py                       # the table in the recipe issue's note
    python tools/recipe_table.py --epochs 10 --out runs/recipes

Each variant is ``configs/demo.yaml`` with the overrides below; every run folder is kept
under ``--out`` and the table (val accuracy, val loss, seconds) is printed as Markdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = {
    "adam, crossentropy, constant (baseline)": {},
    "ranger": {"transfer.optimizer": "ranger", "finetune.optimizer": "ranger"},
    "ranger-3x-lr (Lookahead halves the step)": {"transfer.optimizer": "ranger", "finetune.optimizer": "ranger",
                                                 "transfer.lr": "3x", "finetune.lr": "3x"},
    "focal loss (gamma 2)": {"transfer.loss": "focal", "finetune.loss": "focal"},
    "label smoothing 0.1": {"transfer.label_smoothing": 0.1, "finetune.label_smoothing": 0.1},
    "triangular2 (lr .. 5 lr, half-cycle 2 epochs)": {"transfer.schedule": "triangular2", "transfer.max_lr": None,
                                                      "transfer.reduce_lr_patience": 0},
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"))
    p.add_argument("--epochs", type=int, default=None, help="transfer epochs (default: the config's)")
    p.add_argument("--out", default="runs/recipes")
    p.add_argument("--only", nargs="*", help="variant name prefixes to run")
    args = p.parse_args(argv)

    import leafnet
    from leafnet.config import load_config

    base = load_config(args.config)
    rows = []
    for name, overrides in VARIANTS.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        flags = dict(overrides)
        if "transfer.max_lr" in flags:
            flags["transfer.max_lr"] = 5 * base.transfer.lr
        for phase in ("transfer", "finetune"):
            if flags.get(f"{phase}.lr") == "3x":
                flags[f"{phase}.lr"] = 3 * getattr(base, phase).lr
        if args.epochs:
            flags["transfer.epochs"] = args.epochs
        flags["run.dir"] = str(Path(args.out) / name.split(" ")[0].strip(","))
        flags["run.verbose"] = 0
        t0 = time.perf_counter()
        run = leafnet.fit(base, **flags)
        m = run.metrics
        rows.append((name, m["val_accuracy"], m["val_loss"], m["val_crossentropy"], m["epochs"],
                     time.perf_counter() - t0))
        print(f"{name}: val_accuracy {m['val_accuracy']:.4f}", flush=True)
    print("\n| recipe | val accuracy | val loss (as trained) | val cross-entropy | epochs | seconds |")
    print("|---|---|---|---|---|---|")
    for name, acc, loss, ce, epochs, sec in rows:
        print(f"| {name} | {acc:.4f} | {loss:.4f} | {ce:.4f} | {epochs} | {sec:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
