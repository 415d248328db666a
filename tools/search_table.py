"""Grid vs random vs Bayesian search over learning rate and batch size on 10% of the demo leaves.

    python tools/search_table.py                      # the table in the search issue's note
    python tools/search_table.py --trials 20 --epochs 8 --out runs/search-table

The subset is the first 10% of every species' images (copied once under ``--out``). Every
tuner gets the same base config (``configs/demo.yaml`` with ``--epochs`` transfer epochs and
no fine-tune phase), the same trial budget and seed; grid search walks the 5 x 4 grid of
``configs/search-grid-lr-batch.yaml``, random and Bayesian sample ``configs/search-lr-batch.yaml``.
Each search folder is kept (rerun to resume); the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent


def subset(out: Path, fraction: float) -> Path:
    from leafnet.datasets.demo import demo_folder

    target = out / f"demo-{int(fraction * 100)}pct"
    if target.is_dir():
        return target
    tmp = out / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for species in sorted(p for p in demo_folder().iterdir() if p.is_dir()):
        files = sorted(species.iterdir())
        (tmp / species.name).mkdir(parents=True)
        for f in files[:max(2, round(len(files) * fraction))]:
            shutil.copy2(f, tmp / species.name / f.name)
    os.replace(tmp, target)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--tuners", default="grid,random,bayesian")
    ap.add_argument("--out", default="runs/search-table")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from leafnet.config import load_config
    from leafnet.tune.search import search

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = subset(out, args.fraction)
    rows = []
    for tuner in args.tuners.split(","):
        cfg = load_config(ROOT / "configs" / "demo.yaml", flags={
            "data.demo": False, "data.data": str(data), "transfer.epochs": args.epochs, "finetune.epochs": 0,
            "run.dir": str(out / tuner), "run.verbose": 0})
        space = ROOT / "configs" / ("search-grid-lr-batch.yaml" if tuner == "grid" else "search-lr-batch.yaml")
        t0 = time.perf_counter()
        r = search(cfg, tuner=tuner, max_trials=args.trials, space=space)
        seconds = time.perf_counter() - t0
        done = [t for t in r.trials if t["status"] == "COMPLETED"]
        top3 = sorted(t["val_loss"] for t in done)[:3]
        rows.append((tuner, r.best["val_loss"], r.best["val_accuracy"], r.best["transfer.lr"],
                     r.best["data.batch_size"], sum(top3) / len(top3), len(done), len(r.trials), seconds))
        print(f"{tuner}: best val_loss {r.best['val_loss']:.4f} ({seconds:.0f} s)", flush=True)

    print(f"\n{args.trials} trials per tuner, {args.epochs} transfer epochs per trial (early stopping 2), "
          f"data: {data}\n")
    print("| tuner | best val loss | its val accuracy | its lr | its batch | mean of top 3 val loss | completed | "
          "wall time |")
    print("|---|---|---|---|---|---|---|---|")
    for tuner, loss, acc, lr, batch, top3, done, n, s in rows:
        print(f"| {tuner} | {loss:.4f} | {acc:.3f} | {lr:.2e} | {batch} | {top3:.4f} | {done}/{n} | {s / 60:.1f} min |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
