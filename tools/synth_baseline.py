"""Check that the synthetic leaf set is a real classification task.

Generates a set with ``leafnet.datasets.generate`` into a temporary folder, splits it
5:1 per class with a fixed seed, and trains two models from scratch:

(a) a linear model on raw pixels (Rescaling -> Flatten -> Dense softmax), which should
    stay clearly worse, because colour, size and position do not give the class away;
(b) a small CNN (RandomFlip + RandomRotation augmentation, four Conv3x3-BN-ReLU-MaxPool
    blocks with 32/64/128/128 filters, global max pooling, dropout, softmax), which
    should reach >= 0.93 validation accuracy in about 25 epochs.

Both use Adam with cosine decay; the linear model gets the same number of epochs.

Example (one core, one TF thread)::

    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 taskset -c 1 \\
        python tools/synth_baseline.py --per-class 100 --size 64 --epochs 25
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leafnet.datasets import SPECIES, generate  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-class", type=int, default=100, help="images per species (default 100)")
    p.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    p.add_argument("--seed", type=int, default=0, help="data, split and training seed (default 0)")
    p.add_argument("--epochs", type=int, default=25, help="training epochs for each model (default 25)")
    p.add_argument("--classes", type=int, default=len(SPECIES), help="number of species (default 14)")
    p.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    p.add_argument("--pooling", choices=("max", "avg"), default="max", help="CNN global pooling (default max)")
    p.add_argument("--threads", type=int, default=0, help="TF intra/inter-op threads; 0 = TF default")
    p.add_argument("--confusion", action="store_true", help="print the CNN's confusion matrix")
    return p.parse_args(argv)


def load(root: Path, classes: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for label, name in enumerate(SPECIES[:classes]):
        for path in sorted((root / name).glob("*.png")):
            with Image.open(path) as img:
                xs.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            ys.append(label)
    return np.stack(xs), np.array(ys, dtype=np.int64)


def split(y: np.ndarray, seed: int, val_every: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Stratified 5:1 split: one image in ``val_every`` of each class goes to validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = int(round(len(idx) / val_every))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train)), np.sort(np.array(val))


def linear_model(keras, size: int, classes: int):
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(classes, activation="softmax"),
        ],
        name="linear",
    )


def small_cnn(keras, size: int, classes: int, seed: int, rotation: float = 0.5, fill_mode: str = "reflect", pooling: str = "max"):
    layers = keras.layers
    model = keras.Sequential(name="small_cnn")
    model.add(keras.Input((size, size, 3)))
    model.add(layers.RandomFlip("horizontal_and_vertical", seed=seed))
    model.add(layers.RandomRotation(rotation, fill_mode=fill_mode, seed=seed))
    model.add(layers.Rescaling(1.0 / 255))
    for filters in (32, 64, 128, 128):
        model.add(layers.Conv2D(filters, 3, padding="same", use_bias=False))
        model.add(layers.BatchNormalization(momentum=0.9))
        model.add(layers.ReLU())
        model.add(layers.MaxPooling2D())
    # Max pooling: the leaf covers a varying part of the frame, and averaging would mix
    # in however much background surrounds it (measured: ~0.90 with "avg", ~0.93 "max").
    model.add(layers.GlobalMaxPooling2D() if pooling == "max" else layers.GlobalAveragePooling2D())
    model.add(layers.Dropout(0.3))
    model.add(layers.Dense(classes, activation="softmax"))
    return model


def train(keras, model, data, epochs: int, batch_size: int, lr: float) -> tuple[float, float, float]:
    x_tr, y_tr, x_va, y_va = data
    steps = epochs * int(np.ceil(len(x_tr) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    hist = model.fit(
        x_tr, y_tr, validation_data=(x_va, y_va), epochs=epochs, batch_size=batch_size, verbose=2
    )
    seconds = time.perf_counter() - start
    val = hist.history["val_accuracy"]
    return float(val[-1]), float(max(val)), seconds


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(args.threads))
    import keras
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="leafnet_synth_") as tmp:
        start = time.perf_counter()
        generate(tmp, classes=args.classes, per_class=args.per_class, size=args.size, seed=args.seed)
        gen_s = time.perf_counter() - start
        x, y = load(Path(tmp), args.classes)
    n = len(y)
    print(f"generated {n} images of {args.size}px in {gen_s:.1f}s ({1000 * gen_s / n:.1f} ms/image)")

    tr, va = split(y, args.seed)
    data = (x[tr], y[tr], x[va], y[va])
    print(f"split: {len(tr)} train, {len(va)} val (stratified 5:1, seed {args.seed})")

    keras.utils.set_random_seed(args.seed)
    lin = train(keras, linear_model(keras, args.size, args.classes), data, args.epochs, 32, 1e-3)
    keras.utils.set_random_seed(args.seed)
    cnn_model = small_cnn(keras, args.size, args.classes, args.seed, pooling=args.pooling)
    cnn = train(keras, cnn_model, data, args.epochs, args.batch_size, 2e-3)

    print(f"linear    val_accuracy final {lin[0]:.3f}  best {lin[1]:.3f}  ({lin[2]:.0f}s)")
    print(f"small CNN val_accuracy final {cnn[0]:.3f}  best {cnn[1]:.3f}  ({cnn[2]:.0f}s)")
    if args.confusion:
        pred = np.argmax(cnn_model.predict(x[va], verbose=0), axis=1)
        cm = np.zeros((args.classes, args.classes), dtype=int)
        np.add.at(cm, (y[va], pred), 1)
        for c in range(args.classes):
            print(f"{SPECIES[c]:>20s} " + " ".join(f"{v:2d}" for v in cm[c]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
