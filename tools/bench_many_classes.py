"""Many classes, few images: a 1-epoch fit and an evaluation, measuring peak memory and time.

    python tools/bench_many_classes.py --classes 1000            # 1000 classes x 2 images, 32 px

Writes ``--classes`` folders of ``--per-class`` tiny noise PNGs once under ``--out``, then
trains simple-cnn (no pretrained weights) for one epoch and runs ``leafnet evaluate`` on the
validation split, in a fresh process whose peak resident memory is its own. Prints one JSON
line: seconds for fit and evaluate, the peak RSS, and the pixel sizes of the confusion figures
(bounded whatever the number of classes; the full matrices are the CSVs beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHILD = r"""
import json, resource, sys, time
from PIL import Image
import leafnet
from leafnet.evaluate import evaluate
data, run_dir = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
leafnet.fit({"data": {"data": data, "image_size": 32, "batch_size": 64},
             "model": {"backbone": "simple-cnn", "weights": "none"},
             "transfer": {"epochs": 1, "early_stopping": 0}, "finetune": {"epochs": 0},
             "run": {"dir": run_dir, "seed": 0, "verbose": 0}})
t1 = time.perf_counter()
report = evaluate(run_dir, subset="val")
t2 = time.perf_counter()
sizes = {}
for f in ("plots/confusion_val.png", "eval/val_confusion.png", "eval/val_confusion_normalized.png",
          "eval/val_top_losses.png"):
    with Image.open(f"{run_dir}/{f}") as im:
        sizes[f] = list(im.size)
print(json.dumps({"classes": len(report["classes"]), "val_images": report["images"], "fit_s": round(t1 - t0, 1),
                  "evaluate_s": round(t2 - t1, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "png_sizes": sizes}))
"""


def make_folder(root: Path, classes: int, per_class: int, size: int = 32) -> Path:
    """``classes`` folders of ``per_class`` noise PNGs, each class a different mean colour."""
    import numpy as np
    from PIL import Image

    folder = root / f"classes-{classes}x{per_class}"
    if (folder / ".done").is_file():
        return folder
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = folder / f"class_{c:04d}"
        d.mkdir(parents=True, exist_ok=True)
        mean = rng.integers(0, 256, 3)
        for i in range(per_class):
            x = np.clip(mean + rng.normal(0, 40, (size, size, 3)), 0, 255).astype("uint8")
            Image.fromarray(x).save(d / f"{i}.png")
    (folder / ".done").write_text("")
    return folder


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--per-class", type=int, default=2)
    p.add_argument("--out", default="/tmp/leafnet-bench-many-classes")
    args = p.parse_args(argv)
    root = Path(args.out)
    data = make_folder(root, args.classes, args.per_class)
    run_dir = root / f"run-{args.classes}"
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, str(data), str(run_dir)], capture_output=True, text=True)
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr)
        return done.returncode
    print(done.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
