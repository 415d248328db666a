"""Does self-supervised pretext pre-training help with few labels? A table on the demo leaves.

    python tools/pretext_table.py                                   # the table in the pretext issue's note
    python tools/pretext_table.py --per-class 10 --pretext-epochs 1 4 12 --epochs 30 --out runs/pretext_table

The demo leaves (14 species x 100) are split once: ``--val-per-class`` images per class
are the validation set, ``--per-class`` the labelled training set, and every image
except the validation ones is the unlabelled pool, copied into one flat folder (no class
sub-folders) for ``leafnet pretext``. Then, at the same labelled budget (``--epochs``
epochs over the labelled set):

* scratch: the whole network from random weights for all epochs;
* random backbone: the transfer recipe below on a random backbone (0 pretext epochs), the
  control that separates the pretext weights from the recipe;
* rotation / perturbation pretext with N pretext epochs: the pretext backbone, frozen
  for the first half of the epochs (only the head trains: the "frozen" column, a linear
  probe of the pretext features), then fine-tuned whole for the second half.

Every run folder is kept under ``--out``; the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def make_folders(out: Path, per_class: int, val_per_class: int, seed: int) -> tuple[Path, Path, Path]:
    """``(labelled train, val, flat unlabelled pool)`` folders drawn from the demo leaves."""
    import numpy as np

    from leafnet.datasets.demo import demo_folder

    demo = demo_folder()
    train, val, pool = out / "data" / "train", out / "data" / "val", out / "data" / "unlabelled"
    if pool.is_dir():
        return train, val, pool
    rng = np.random.default_rng(seed)
    for species in sorted(p.name for p in demo.iterdir() if p.is_dir()):
        files = sorted(f for f in (demo / species).iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        files = [files[i] for i in rng.permutation(len(files))]
        for i, f in enumerate(files):
            if i < val_per_class:
                dest = [val / species / f.name]
            elif i < val_per_class + per_class:
                dest = [train / species / f.name, pool / f"{species}-{f.name}"]
            else:
                dest = [pool / f"{species}-{f.name}"]
            for d in dest:
                d.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, d)
    return train, val, pool


def base_config(size: int, seed: int) -> dict:
    return {
        "data": {"image_size": size, "batch_size": 16},
        "augment": {"flip": "horizontal_and_vertical", "rotation": 0.5, "zoom": 0.1, "translation": 0.1},
        "model": {"backbone": "simple-cnn", "pooling": "max", "dropout": 0.3},
        "run": {"seed": seed, "verbose": 0},
    }


def random_backbone(path: Path, size: int) -> Path:
    """A randomly initialised simple-cnn backbone file (the 0-pretext-epochs control)."""
    if path.exists():
        return path
    import keras

    from leafnet.config import ModelConfig
    from leafnet.models.classifier import build_classifier
    from leafnet.models.registry import get_backbone
    from leafnet.models.weights import save_backbone

    keras.utils.set_random_seed(0)
    spec = get_backbone("simple-cnn")
    save_backbone(build_classifier(spec, 2, size, ModelConfig(weights="none")), spec, size, path,
                  info={"note": "random initialisation"})
    return path


def frozen_accuracy(run) -> float | None:
    """val accuracy at the end of the frozen (transfer) phase, from history.csv."""
    rows = [r for r in run.history if r["phase"] == "transfer"]
    return float(rows[-1]["val_accuracy"]) if rows else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=10, help="labelled training images per class")
    p.add_argument("--val-per-class", type=int, default=20)
    p.add_argument("--size", type=int, default=48, help="image size of every run")
    p.add_argument("--epochs", type=int, default=30, help="labelled budget: epochs over the labelled set")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--pretext-epochs", type=int, nargs="+", default=[1, 4, 12])
    p.add_argument("--tasks", nargs="+", default=["rotation", "perturbation"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1], help="seeds of the labelled runs (mean is shown)")
    p.add_argument("--out", default="runs/pretext_table")
    args = p.parse_args(argv)

    import leafnet
    from leafnet.pretext import pretext

    out = Path(args.out)
    train, val, pool = make_folders(out, args.per_class, args.val_per_class, seed=0)
    n_pool = sum(1 for _ in pool.iterdir())
    print(f"labelled: {train} ({args.per_class}/class), val: {val} ({args.val_per_class}/class), "
          f"unlabelled pool: {pool} ({n_pool} images, flat)", flush=True)
    half = args.epochs // 2
    rows = []

    def labelled(name: str, weights: str) -> tuple[float, float | None, float]:
        accs, frozen, t0 = [], [], time.perf_counter()
        for seed in args.seeds:
            cfg = base_config(args.size, seed)
            cfg["data"].update({"train": str(train), "val": str(val)})
            cfg["model"]["weights"] = weights
            if weights == "none":  # from scratch: the whole network trains for the whole budget
                cfg["transfer"] = {"epochs": args.epochs, "lr": args.lr, "early_stopping": 0}
                cfg["finetune"] = {"epochs": 0, "blocks": 0}
            else:  # frozen backbone, then everything fine-tuned
                cfg["transfer"] = {"epochs": half, "lr": 5 * args.lr, "early_stopping": 0}
                cfg["finetune"] = {"epochs": args.epochs - half, "blocks": "all", "lr": args.lr / 2,
                                   "early_stopping": 0, "reduce_lr_patience": 0}
            cfg["run"]["dir"] = str(out / "labelled" / f"{name}-seed{seed}")
            run = leafnet.fit(cfg)
            accs.append(run.metrics["val_accuracy"])
            if weights != "none":
                frozen.append(frozen_accuracy(run))
        return (statistics.mean(accs), statistics.mean(frozen) if frozen else None,
                (time.perf_counter() - t0) / len(args.seeds))

    acc, _, sec = labelled("scratch", "none")
    rows.append(("scratch (no pretext)", "-", None, None, acc, None, sec))
    print(f"scratch: val_accuracy {acc:.4f}", flush=True)
    # Control: the transfer recipe (frozen, then fine-tuned) on a random backbone, i.e. 0 pretext epochs.
    acc, frozen, sec = labelled("random-backbone", str(random_backbone(out / "random" / "backbone.keras", args.size)))
    rows.append(("random backbone, transfer recipe", 0, None, None, acc, frozen, sec))
    print(f"random backbone: frozen {frozen:.4f}, final {acc:.4f}", flush=True)
    for task in args.tasks:
        for ep in args.pretext_epochs:
            t0 = time.perf_counter()
            cfg = base_config(args.size, 0)
            cfg["data"].update({"data": str(pool), "batch_size": 32})
            cfg["model"]["weights"] = "none"
            cfg["transfer"] = {"epochs": ep, "lr": args.lr, "early_stopping": 0}
            cfg["finetune"] = {"epochs": 0, "blocks": 0}
            cfg["run"]["dir"] = str(out / "pretext" / f"{task}-{ep}")
            prun = pretext(cfg, task=task)
            psec = time.perf_counter() - t0
            acc, frozen, sec = labelled(f"{task}-{ep}", str(prun.root))
            rows.append((task, ep, prun.metrics["val_accuracy"], psec, acc, frozen, sec))
            print(f"{task} x{ep}: pretext val_accuracy {prun.metrics['val_accuracy']:.4f}, "
                  f"frozen {frozen:.4f}, final {acc:.4f}", flush=True)

    print(f"\n{args.per_class} labelled images per class, {args.size} px, simple-cnn, {args.epochs} labelled epochs, "
          f"seeds {args.seeds}; val: {args.val_per_class} per class")
    print("\n| start | pretext epochs | pretext val acc | pretext s | val acc, backbone frozen | val acc, final | labelled s |")
    print("|---|---|---|---|---|---|---|")
    for name, ep, pacc, psec, acc, frozen, sec in rows:
        f = lambda v, fmt=".4f": "-" if v is None else format(v, fmt)  # noqa: E731
        print(f"| {name} | {ep} | {f(pacc)} | {f(psec, '.0f')} | {f(frozen)} | {acc:.4f} | {sec:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
