"""A folder larger than you want in memory: scan, split and stream it, measuring peak memory.

    python tools/bench_large_folder.py --files 100000        # the figure in README "Performance"

Writes N tiny PNGs (16 px noise, 10 classes) once under ``--out``, then, each in a fresh
process so its peak resident memory is its own: scan + split (every file decoded once,
bad files found), and one epoch streamed from disk without any cache (``data.cache: none``:
decode per batch, nothing kept). Run it at two sizes to see whether memory grows with N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHILD = r"""
import json, resource, sys, time
import numpy as np
from leafnet.config import DataConfig
from leafnet.data.prepare import scan_and_split
from leafnet.data.pipeline import ImageSet
t0 = time.perf_counter()
split = scan_and_split(DataConfig(data=sys.argv[1]), seed=0, progress=False)
t1 = time.perf_counter()
rss_scan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
paths, labels, _ = split.subset(val=False)
images = ImageSet(paths, labels, len(split.classes), 16)
images.cache("none")
n = 0
for x, y in images.dataset(256, np.random.default_rng(0).permutation(len(images))):
    n += int(x.shape[0])
t2 = time.perf_counter()
print(json.dumps({"files": len(split.paths), "scan_split_s": t1 - t0, "epoch_s": t2 - t1, "streamed": n,
                  "rss_after_scan_mb": rss_scan / 1024,
                  "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_folder(root: Path, n: int, classes: int = 10) -> Path:
    import numpy as np
    from PIL import Image

    folder = root / f"tiny-{n}"
    if (folder / ".complete").exists():
        return folder
    rng = np.random.default_rng(0)
    for i in range(n):
        c = folder / f"class{i % classes:02d}"
        c.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(c / f"{i:07d}.png")
    (folder / ".complete").write_text("ok")
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--out", default="runs/bench-large")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    rows = []
    for n in args.files:
        t0 = time.perf_counter()
        folder = make_folder(out, n)
        print(f"{n} files ready ({time.perf_counter() - t0:.0f} s)", flush=True)
        r = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    print("\n| files | scan + split | one streamed epoch | peak memory after scan | peak memory |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['files']:,} | {r['scan_split_s']:.0f} s | {r['epoch_s']:.0f} s | {r['rss_after_scan_mb']:.0f} MB | "
              f"{r['rss_peak_mb']:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
