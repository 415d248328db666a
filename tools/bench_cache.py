"""Frozen-phase feature caching on the demo leaves: phase-1 time and val accuracy, cached vs not.

    python tools/bench_cache.py                       # the table in README "Performance"
    python tools/bench_cache.py --backbone b0 --size 96 --epochs 10

A source run (the demo recipe, shortened) provides a trained backbone; each variant then
trains a new head on it for ``--epochs`` transfer epochs (backbone frozen, no fine-tune
phase) with ``data.cache_features`` off or on. Without augmentation the cache is exact
(same numbers); with augmentation it trains on K augmented copies computed once, against
fresh augmentation every epoch. Time = the trainer's own time (feature computation
included; start-up, scanning and image decoding excluded, as they are the same).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent

NO_AUGMENT = {"augment.flip": "none", "augment.rotation": 0.0, "augment.zoom": 0.0, "augment.translation": 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="simple-cnn")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--source-epochs", type=int, default=8)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--out", default="runs/bench-cache")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import leafnet
    from leafnet.config import load_config

    out = Path(args.out).resolve()
    base = {"model.backbone": args.backbone, "data.image_size": args.size, "run.verbose": 0}
    source = out / "source"
    if not (source / "metrics.json").exists():
        cfg = load_config(ROOT / "configs" / "demo.yaml", flags={**base, "transfer.epochs": args.source_epochs,
                                                                  "finetune.epochs": 0, "run.dir": str(source)})
        leafnet.fit(cfg)
    variants = [("no augmentation, uncached", "off", NO_AUGMENT), ("no augmentation, cached (exact)", "auto", NO_AUGMENT),
                ("augmentation, uncached", "off", {}),
                (f"augmentation, cached ({args.copies} copies)", "on", {"data.feature_copies": args.copies})]
    rows = []
    for name, mode, over in variants:
        run_dir = out / name.replace(" ", "-").replace(",", "").replace("(", "").replace(")", "")
        cfg = load_config(ROOT / "configs" / "demo.yaml", flags={
            **base, **over, "model.weights": str(source), "transfer.epochs": args.epochs, "transfer.early_stopping": 0,
            "transfer.reduce_lr_patience": 0, "finetune.epochs": 0, "data.cache_features": mode, "run.dir": str(run_dir)})
        run = leafnet.fit(cfg)
        m = run.metrics
        rows.append((name, m["train_seconds_this_session"], m["val_accuracy"], m["val_loss"]))
        print(f"{name}: {m['train_seconds_this_session']:.1f} s, val accuracy {m['val_accuracy']:.4f}", flush=True)
    print(f"\n{args.backbone} at {args.size} px, demo leaves, {args.epochs} transfer epochs on a trained backbone\n")
    print("| variant | phase-1 seconds | speed-up | val accuracy | val loss |")
    print("|---|---|---|---|---|")
    for i, (name, s, acc, loss) in enumerate(rows):
        ref = rows[0 if i < 2 else 2][1]
        print(f"| {name} | {s:.1f} | {ref / s:.1f}x | {acc:.4f} | {loss:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
