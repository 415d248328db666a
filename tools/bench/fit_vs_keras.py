"""Benchmark: leafnet's trainer against a hand-written Keras ``model.fit`` of the same model.

Both sides train the same classifier (``build_classifier`` of the config: augmentation
layers, backbone, head; two instances built with the same seed), with the same
optimizer, loss, batch size and images (decoded once, in memory), and validate on the
same images every epoch:

* leafnet: :class:`leafnet.train.trainer.Trainer` in a fresh run folder under /tmp
  (what ``leafnet fit`` runs after scanning and caching: per-epoch reseeding and shuffle
  order, one ``fit`` call per segment of epochs, backups, ``best.keras``, history), transfer phase only,
  early stopping and plateau schedule off, so every round runs ``--epochs`` epochs;
* keras: ``model.fit(x, y, validation_data=(xv, yv), epochs=E, shuffle=True)``;
* keras-tfdata: the same model fed as the tf.data guide writes it:
  ``Dataset.from_tensor_slices((x, y)).shuffle(n).batch(b).prefetch(AUTOTUNE)``.

A round runs E epochs of each side, alternating which goes first. An epoch's time is
from the start of its training to the start of the next epoch's, so everything the
trainer does between epochs is counted; each round's first epoch (tracing after
``compile``) is left out. ``--profile`` also prints where leafnet's time per epoch goes.

    python tools/bench/fit_vs_keras.py                   # the demo recipe: simple-cnn, 64 px, demo leaves
    python tools/bench/fit_vs_keras.py --backbone b0 --size 96 --epochs 3 --rounds 2
"""

from __future__ import annotations

import argparse
import collections
import functools
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alternate, machine_line, table  # noqa: E402


class Clock:
    """Accumulates wall time per label, for the ``--profile`` breakdown."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.calls = collections.defaultdict(int)
        self.enabled = False

    def wrap(self, label, fn):
        @functools.wraps(fn)
        def timed(*a, **k):
            if not self.enabled:
                return fn(*a, **k)
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[label] += time.perf_counter() - t0
                self.calls[label] += 1
        return timed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"))
    p.add_argument("--backbone", help="override model.backbone")
    p.add_argument("--size", type=int, help="override data.image_size")
    p.add_argument("--epochs", type=int, default=4, help="epochs per round and side (the first is not timed)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--profile", action="store_true", help="break leafnet's epoch time down")
    args = p.parse_args(argv)

    import keras
    import numpy as np

    import leafnet.train.trainer as trainer_mod
    from leafnet.data.pipeline import ImageSet
    from leafnet.data.prepare import scan_and_split
    from leafnet.runs import RunDir
    from leafnet.train.fit import as_config, build_model, resolve_config
    from leafnet.train.losses import make_loss
    from leafnet.train.optimizers.factory import make_optimizer, make_schedule

    flags = {"transfer.epochs": args.epochs, "finetune.epochs": 0, "transfer.early_stopping": 0,
             "transfer.reduce_lr_patience": 0, "run.verbose": 0}
    if args.backbone:
        flags["model.backbone"] = args.backbone
    if args.size:
        flags["data.image_size"] = args.size
    cfg, spec, size = resolve_config(as_config(args.config, **flags))
    split = scan_and_split(cfg.data, cfg.run.seed, progress=False)
    k = len(split.classes)
    tp, tl, _ = split.subset(val=False)
    vp, vl, _ = split.subset(val=True)
    train, val = ImageSet(tp, tl, k, size), ImageSet(vp, vl, k, size)
    train.cache("memory")
    val.cache("memory")
    bs = cfg.data.batch_size
    x = np.concatenate([b.numpy() for b, _ in train.dataset(256)])
    y = np.concatenate([lab.numpy() for _, lab in train.dataset(256)])
    xv = np.concatenate([b.numpy() for b, _ in val.dataset(256)])
    yv = np.concatenate([lab.numpy() for _, lab in val.dataset(256)])
    n = len(train)

    # Epoch boundaries: one more callback, after the trainer's (fit_callbacks), records
    # when each epoch's training starts.
    starts: list[float] = []

    class Start(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            starts.append(time.perf_counter())

    original_callbacks = trainer_mod.fit_callbacks
    trainer_mod.fit_callbacks = lambda *a, **kw: original_callbacks(*a, **kw) + [Start()]

    clock = Clock()
    if args.profile:
        import leafnet.train.checkpoint as checkpoint_mod

        for name in ("reseed", "finite_weights", "model_arrays"):
            setattr(trainer_mod, name, clock.wrap(name, getattr(trainer_mod, name)))
        for owner, name in ((checkpoint_mod.Checkpoints, "save_backup"), (checkpoint_mod.Checkpoints, "load_backup"),
                            (checkpoint_mod.BestKeras, "save")):
            setattr(owner, name, clock.wrap(f"{owner.__name__}.{name}", getattr(owner, name)))
        for name in ("on_epoch_begin", "on_epoch_end", "_commit", "train_dataset", "_steps_per_epoch"):
            setattr(trainer_mod.Trainer, name, clock.wrap(f"Trainer.{name}", getattr(trainer_mod.Trainer, name)))

    leafnet_model = build_model(cfg, spec, k)
    if args.profile:
        leafnet_model.fit = clock.wrap("model.fit", leafnet_model.fit)
        leafnet_model.evaluate = clock.wrap("model.evaluate (val)", leafnet_model.evaluate)
    from leafnet.models.classifier import set_trainable

    def plain_model():
        m = build_model(cfg, spec, k)
        set_trainable(m, spec, "transfer", from_scratch=cfg.model.weights == "none")
        m.compile(optimizer=make_optimizer(cfg.transfer, make_schedule(cfg.transfer, -(-n // bs))),
                  loss=make_loss(cfg.transfer), metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        return m

    keras_model, tfdata_model = plain_model(), plain_model()
    tmp = Path(tempfile.mkdtemp(prefix="leafnet-bench-fit-"))
    epoch_s: dict[str, list[float]] = {"leafnet": [], "keras": [], "keras-tfdata": []}
    wall = {"leafnet": 0.0, "keras": 0.0, "keras-tfdata": 0.0}

    def durations(t_end: float) -> list[float]:
        marks = starts + [t_end]
        return [b - a for a, b in zip(marks, marks[1:])][1:]     # the first epoch traces: not timed

    def leafnet_round(r: int) -> float:
        run = RunDir(tmp / f"run{r}")
        run.create()
        t = trainer_mod.Trainer(cfg, run, spec, leafnet_model, train, val, from_scratch=cfg.model.weights == "none")
        starts.clear()
        t0 = time.perf_counter()
        t.fit()
        t_end = time.perf_counter()
        clock.enabled = True if r == 0 else clock.enabled
        d = durations(t_end)
        epoch_s["leafnet"] += d
        wall["leafnet"] += t_end - t0
        shutil.rmtree(run.root, ignore_errors=True)
        return statistics.median(d)

    def keras_round(r: int) -> float:
        return plain_round("keras", lambda: keras_model.fit(
            x, y, batch_size=bs, epochs=args.epochs, validation_data=(xv, yv), shuffle=True, verbose=0,
            callbacks=[Start()]))

    def tfdata_round(r: int) -> float:
        import tensorflow as tf

        train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=r).batch(bs).prefetch(tf.data.AUTOTUNE)
        val_ds = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(bs).prefetch(tf.data.AUTOTUNE)
        return plain_round("keras-tfdata", lambda: tfdata_model.fit(
            train_ds, epochs=args.epochs, validation_data=val_ds, verbose=0, callbacks=[Start()]))

    def plain_round(side: str, fit) -> float:
        starts.clear()
        t0 = time.perf_counter()
        fit()
        t_end = time.perf_counter()
        d = durations(t_end)
        epoch_s[side] += d
        wall[side] += t_end - t0
        return statistics.median(d)

    # Round 0 of leafnet runs unprofiled (tracing); the profile covers rounds 1.. .
    profiled_epochs = max(0, (args.rounds - 1) * args.epochs)
    alternate({"leafnet": leafnet_round, "keras": keras_round, "keras-tfdata": tfdata_round}, args.rounds)
    shutil.rmtree(tmp, ignore_errors=True)

    rates = {side: [n / s for s in v] for side, v in epoch_s.items()}
    print(f"{spec.name} @ {size} px, batch {bs}, {n} train + {len(val)} val images, {args.epochs} epochs x "
          f"{args.rounds} rounds per side (first epoch of each round not timed); {machine_line()}")
    print()
    print(table({side: rates[side] for side in ("keras", "keras-tfdata", "leafnet")}, "keras",
                unit="train images/s (epoch incl. validation)"))
    print()
    for side in ("keras", "keras-tfdata", "leafnet"):
        print(f"{side}: median epoch {statistics.median(epoch_s[side]):.3f} s; epochs: "
              + ", ".join(f"{s:.2f}" for s in epoch_s[side]))
    # Shared machines drift between a fast and a throttled mode for minutes at a time (an
    # epoch of the demo takes ~2.7 s or exactly ~5.1 s): the medians can compare different
    # modes, the fastest epochs of each side compare the same one.
    fastest = {side: min(v) for side, v in epoch_s.items()}
    print("fastest epoch: " + ", ".join(f"{side} {v:.3f} s (ratio {fastest['keras'] / v:.2f})"
                                        for side, v in fastest.items()))
    if args.profile and profiled_epochs:
        print()
        print(f"leafnet, seconds per epoch by part (rounds 2..{args.rounds}, {profiled_epochs} epochs, each "
              "round's first epoch included: fit and evaluate trace again after the trainer's compile):")
        print()
        print("| part | s/epoch | calls/epoch |")
        print("|---|---|---|")
        for label, s in sorted(clock.seconds.items(), key=lambda kv: -kv[1]):
            print(f"| {label} | {s / profiled_epochs:.4f} | {clock.calls[label] / profiled_epochs:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
