"""Benchmark: is leafnet's input pipeline ever the bottleneck?

Trains the same compiled model one epoch at a time, alternating between

* leafnet: ``ImageSet`` (decoded once, uint8 cache in memory) -> per-epoch shuffled
  tf.data batches, exactly as ``leafnet fit`` feeds it (after the first, caching pass), and
* tensors: the same images already in memory as a float32 NumPy array, ``model.fit(x, y)``,

and reports the median images/s of each and their ratio (target >= 0.95), plus the peak
resident memory of the process. Ratios, not absolute numbers: the machines are shared.

    python tools/bench_fit.py                        # simple-cnn at 64 px on the demo leaves
    python tools/bench_fit.py --backbone b0 --size 128 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="folder of class sub-folders (default: generate synthetic leaves)")
    p.add_argument("--backbone", default="simple-cnn")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--per-class", type=int, default=60)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)

    import keras
    import numpy as np

    from leafnet.config import ModelConfig
    from leafnet.data.pipeline import ImageSet, epoch_order
    from leafnet.data.scan import scan_folder
    from leafnet.models.classifier import build_classifier, set_trainable
    from leafnet.models.registry import get_backbone

    data = args.data
    if data is None:
        from leafnet.datasets import generate

        data = os.path.join(tempfile.mkdtemp(prefix="leafnet-bench-"), "leaves")
        generate(data, classes=14, per_class=args.per_class, size=max(96, args.size), seed=0)
    scan = scan_folder(data)
    images = ImageSet(scan.files, scan.labels, len(scan.classes), args.size)
    t0 = time.perf_counter()
    images.cache("memory")
    decode_s = time.perf_counter() - t0

    spec = get_backbone(args.backbone)
    keras.utils.set_random_seed(0)
    model = build_classifier(spec, len(scan.classes), args.size, ModelConfig(weights="none"), None, seed=0)
    set_trainable(model, spec, "transfer", from_scratch=True)
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])

    x = np.concatenate([b.numpy() for b, _ in images.dataset(256)])
    y = np.concatenate([l.numpy() for _, l in images.dataset(256)])
    n = len(images)

    def leafnet_epoch(e):
        model.fit(images.dataset(args.batch_size, epoch_order(n, 0, e)), epochs=1, verbose=0, shuffle=False)

    def tensor_epoch(e):
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=True)

    leafnet_epoch(0)   # build and trace both paths once
    tensor_epoch(0)
    rates = {"leafnet": [], "tensors": []}
    for r in range(args.rounds):
        for name, fn in (("leafnet", leafnet_epoch), ("tensors", tensor_epoch)) if r % 2 == 0 else \
                (("tensors", tensor_epoch), ("leafnet", leafnet_epoch)):
            t0 = time.perf_counter()
            fn(r + 1)
            rates[name].append(n / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.backbone} @ {args.size}px, batch {args.batch_size}, {n} images, {args.rounds} rounds, "
          f"{os.cpu_count()} cores")
    print(f"first (caching) pass: {n / decode_s:,.0f} images/s decode + resize")
    for k in rates:
        print(f"{k:8} median {med[k]:8.1f} images/s   (rounds: {', '.join(f'{v:.0f}' for v in rates[k])})")
    print(f"ratio leafnet / tensors: {med['leafnet'] / med['tensors']:.3f}  (target >= 0.95)")
    print(f"peak resident memory: {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
