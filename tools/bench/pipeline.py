"""Benchmark: leafnet's input pipeline, against tensors in memory and against a naive generator.

Sub-commands (both train one epoch at a time, the sides alternating, and report medians):

* ``tensors``: the same compiled model fed (a) by leafnet's ``ImageSet`` (decoded once,
  uint8 cache in memory, per-epoch shuffled tf.data batches, as ``leafnet fit`` feeds it
  after the caching pass) and (b) by the same images already in memory as a float32
  NumPy array (``model.fit(x, y, shuffle=True)``). Target ratio >= 0.95.
* ``naive``: how older notebooks fed a model, a Python generator that opens each file with
  PIL and augments it per image with PIL/NumPy (flip, rotation, zoom/shift), yielding
  batches to a model without augmentation layers; against leafnet's pipeline (parallel
  decode, cache, prefetch) into the same model with the same kind of augmentation as
  Keras layers inside it. Reports seconds per epoch; leafnet's caching pass is shown apart.
  A third side, ``leafnet-no-aug``, feeds leafnet's pipeline into the model without
  augmentation layers, separating the cost of the pipeline from that of the augmentation.
  ``--synth-size 256`` measures on generated 256 px JPEGs instead of the 96 px demo PNGs.

    python tools/bench/pipeline.py tensors                     # simple-cnn, 64 px, demo leaves
    python tools/bench/pipeline.py tensors --backbone b0 --size 128 --rounds 3
    python tools/bench/pipeline.py naive
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alternate, machine_line, table  # noqa: E402


def load(args):
    from leafnet.data.scan import scan_folder

    if args.data:
        folder = args.data
    elif args.synth_size:
        import tempfile

        from leafnet.datasets import generate

        folder = os.path.join(tempfile.mkdtemp(prefix="leafnet-bench-"), "leaves")
        generate(folder, classes=14, per_class=100, size=args.synth_size, seed=0, image_format="jpg")
    else:
        from leafnet.datasets.demo import demo_folder

        folder = demo_folder(progress=False)
    scan = scan_folder(folder)
    return scan.files, scan.labels, scan.classes


def model_for(args, num_classes, augment):
    import keras

    from leafnet.config import AugmentConfig, ModelConfig
    from leafnet.models.classifier import build_classifier, set_trainable
    from leafnet.models.registry import get_backbone

    spec = get_backbone(args.backbone)
    keras.utils.set_random_seed(0)
    aug = AugmentConfig(flip="horizontal_and_vertical", rotation=0.5, zoom=0.1, translation=0.1) if augment else None
    model = build_classifier(spec, num_classes, args.size, ModelConfig(weights="none"), aug, seed=0)
    set_trainable(model, spec, "transfer", from_scratch=True)
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    return model


def cmd_tensors(args) -> int:
    import numpy as np

    from leafnet.data.pipeline import ImageSet, epoch_order

    files, labels, classes = load(args)
    images = ImageSet(files, labels, len(classes), args.size)
    t0 = time.perf_counter()
    images.cache("memory")
    decode_s = time.perf_counter() - t0
    model = model_for(args, len(classes), augment=True)
    x = np.concatenate([b.numpy() for b, _ in images.dataset(256)])
    y = np.concatenate([lab.numpy() for _, lab in images.dataset(256)])
    n = len(images)

    def leafnet_epoch(r):
        t = time.perf_counter()
        model.fit(images.dataset(args.batch_size, epoch_order(n, 0, r + 1)), epochs=1, verbose=0, shuffle=False)
        return n / (time.perf_counter() - t)

    def tensor_epoch(r):
        t = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=True)
        return n / (time.perf_counter() - t)

    leafnet_epoch(-1)   # build and trace both paths once
    tensor_epoch(-1)
    rates = alternate({"tensors": tensor_epoch, "leafnet": leafnet_epoch}, args.rounds)
    print(f"{args.backbone} @ {args.size} px, batch {args.batch_size}, {n} images, one epoch per measurement, "
          f"{args.rounds} rounds; {machine_line()}")
    print(f"leafnet's caching pass (decode + resize, once per run): {n / decode_s:,.0f} images/s")
    print()
    print(table(rates, "tensors"))
    return 0


class NaiveGenerator:
    """The notebook way: PIL per file, per-image augmentation in Python, batches of NumPy arrays."""

    def __init__(self, files, labels, num_classes, size, batch_size, seed=0):
        import numpy as np

        self.files, self.labels = list(files), np.asarray(labels)
        self.k, self.size, self.bs = num_classes, size, batch_size
        self.rng = np.random.default_rng(seed)

    def steps(self):
        return -(-len(self.files) // self.bs)

    def _one(self, path):
        import numpy as np
        from PIL import Image

        rng, s = self.rng, self.size
        img = Image.open(path).convert("RGB").resize((s, s), Image.BILINEAR)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_TOP_BOTTOM)
        img = img.rotate(float(rng.uniform(-180, 180)), resample=Image.BILINEAR)
        zoom = float(rng.uniform(0.9, 1.1))
        dx, dy = (rng.uniform(-0.1, 0.1, 2) * s).tolist()
        img = img.transform((s, s), Image.AFFINE, (1 / zoom, 0, dx, 0, 1 / zoom, dy), resample=Image.BILINEAR)
        return np.asarray(img, dtype=np.float32)

    def epoch(self):
        import numpy as np

        order = self.rng.permutation(len(self.files))
        for i in range(0, len(order), self.bs):
            idx = order[i:i + self.bs]
            x = np.stack([self._one(self.files[j]) for j in idx])
            y = np.eye(self.k, dtype=np.float32)[self.labels[idx]]
            yield x, y

    def forever(self):
        while True:
            yield from self.epoch()


def cmd_naive(args) -> int:
    from leafnet.data.pipeline import ImageSet, epoch_order

    files, labels, classes = load(args)
    n = len(files)
    gen = NaiveGenerator(files, labels, len(classes), args.size, args.batch_size)
    naive_model = model_for(args, len(classes), augment=False)
    leafnet_model = model_for(args, len(classes), augment=True)
    plain_model = model_for(args, len(classes), augment=False)
    images = ImageSet(files, labels, len(classes), args.size)
    t0 = time.perf_counter()
    images.cache("memory")
    cache_s = time.perf_counter() - t0
    stream = gen.forever()

    def naive_epoch(r):
        t = time.perf_counter()
        naive_model.fit(stream, steps_per_epoch=gen.steps(), epochs=1, verbose=0)
        return time.perf_counter() - t

    def leafnet_epoch(r):
        t = time.perf_counter()
        leafnet_model.fit(images.dataset(args.batch_size, epoch_order(n, 0, r + 1)), epochs=1, verbose=0)
        return time.perf_counter() - t

    def noaug_epoch(r):
        t = time.perf_counter()
        plain_model.fit(images.dataset(args.batch_size, epoch_order(n, 0, r + 1)), epochs=1, verbose=0)
        return time.perf_counter() - t

    first = {"naive": naive_epoch(-1), "leafnet": leafnet_epoch(-1) + cache_s}
    noaug_epoch(-1)
    secs = alternate({"naive": naive_epoch, "leafnet": leafnet_epoch, "leafnet-no-aug": noaug_epoch}, args.rounds)
    print(f"{args.backbone} @ {args.size} px, batch {args.batch_size}, {n} images, one epoch per measurement, "
          f"{args.rounds} rounds; {machine_line()}")
    print(f"first epoch (tracing; leafnet's includes its caching pass of {cache_s:.1f} s): "
          f"naive {first['naive']:.1f} s, leafnet {first['leafnet']:.1f} s")
    print()
    print(table(secs, "naive", unit="s/epoch", higher_is_better=False,
                notes={"leafnet-no-aug": "leafnet's pipeline, model without augmentation layers: the pipeline alone"}))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("tensors", "naive"))
    p.add_argument("--data", help="folder of class sub-folders (default: the demo leaves, generated on first use)")
    p.add_argument("--synth-size", type=int, help="generate 14 x 100 synthetic JPEGs of this size instead")
    p.add_argument("--backbone", default="simple-cnn")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    return cmd_tensors(args) if args.command == "tensors" else cmd_naive(args)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
