"""Frozen-phase feature caching: train the head on backbone features computed once.

While the backbone is frozen (the transfer phase with pretrained weights), it runs in
inference mode and its weights do not change, so its output for an image depends only on
the image. The classifier is cut where the head starts: the *backbone part* (after the
augmentation block, up to the first head layer, global pooling included since it has no
weights) is run once over the data, and the *head part* (the very same head layers, so
the same weights) trains on the stored features. One epoch then costs what the head
costs, a few milliseconds instead of a forward pass through the backbone.

Exact when the model has no active augmentation (the features are what the full model
would compute, up to float rounding); with augmentation, ``copies`` augmented versions
of every image are computed once (seeded) and epoch ``e`` trains on copy ``e % copies``:
an approximation, which is why ``transfer.cache_features: auto`` caches only where it is
exact. MixUp / CutMix mix images, not features: no caching with them.

Features are kept in memory, or in ``RUN/cache/`` as a file named by a fingerprint of
the images, the backbone's weights, the image size and the copies, so a changed backbone,
weight file, data set or size never reuses a stale cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from leafnet import console
from leafnet.console import progress_bar
from leafnet.runs import atomic_path
from leafnet.train.seeding import epoch_seed, reseed

MEMORY_LIMIT = 2 * 1024 ** 3   # features above this many bytes go to a disk memmap


def augmentation_active(model) -> bool:
    """Whether the model's augmentation block changes anything in training."""
    from leafnet.models.parts import augmentation_of

    return bool(getattr(augmentation_of(model), "layers", None))


def split_at_head(model):
    """``(backbone_part, head_part)`` of a leafnet classifier.

    ``backbone_part``: augmentation output -> the input of the first head layer that has
    weights (the pooling layer, weightless, stays on the backbone side). ``head_part``: a
    new input of that shape through the model's own head layers (shared weights).
    """
    import keras

    from leafnet.models.parts import HEAD_FLATTEN, HEAD_POOL, augmentation_of, head_layers

    head = head_layers(model)
    if not head:
        raise ValueError("the model has no head_* / predictions layers")
    cut = 0
    while cut < len(head) - 1 and not head[cut].weights and head[cut].name.startswith((HEAD_POOL, HEAD_FLATTEN)):
        cut += 1
    first = head[cut]
    features = first.input
    aug = augmentation_of(model)
    start = aug.output if aug is not None else model.input
    backbone_part = keras.Model(start, features, name="cached_backbone")
    inp = keras.Input(shape=tuple(features.shape[1:]), dtype=features.dtype, name="features")
    x = inp
    for layer in head[cut:]:
        x = layer(x)
    head_part = keras.Model(inp, x, name="head")
    return backbone_part, head_part


def weights_fingerprint(model) -> str:
    h = hashlib.sha1()
    for w in model.weights:
        a = np.ascontiguousarray(np.asarray(w))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


class FeatureCache:
    """The backbone features of an ImageSet: ``copies`` arrays ``[N, ...]`` (float32)."""

    def __init__(self, model, images, copies: int = 1, seed: int = 0, augment: bool = False,
                 cache_dir: str | Path | None = None, label: str = "train", batch_size: int = 64,
                 progress: bool = False):
        self.backbone_part, self.head_part = split_at_head(model)
        self.images, self.copies, self.labels = images, int(copies), images.labels
        self._onehot = images.onehot
        self._tables: dict = {}       # copy -> tf.constant of its features (memory)
        shape = (self.copies, len(images), *tuple(int(d) for d in self.backbone_part.output.shape[1:]))
        nbytes = int(np.prod(shape)) * 4
        key = hashlib.sha1(f"v1|{images.fingerprint()}|{weights_fingerprint(self.backbone_part)}|{copies}|"
                           f"{augment}|{seed}|{shape}".encode()).hexdigest()[:16]
        self.path = Path(cache_dir) / f"features-{label}-{key}.f32" if cache_dir and nbytes > MEMORY_LIMIT else None
        if self.path is not None and self.path.exists() and self.path.stat().st_size == nbytes:
            self.features = np.memmap(self.path, mode="r", dtype=np.float32, shape=shape)
            return
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                out = np.memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
                self._compute(out, model, seed, augment, batch_size, progress, label)
                out.flush()
                del out
            self.features = np.memmap(self.path, mode="r", dtype=np.float32, shape=shape)
        else:
            self.features = np.empty(shape, dtype=np.float32)
            self._compute(self.features, model, seed, augment, batch_size, progress, label)

    def _compute(self, out: np.ndarray, model, seed: int, augment: bool, batch_size: int, progress: bool,
                 label: str) -> None:
        import tensorflow as tf

        from leafnet.models.parts import AUGMENTATION

        aug, backbone = (model.get_layer(AUGMENTATION) if augment else None), self.backbone_part

        @tf.function(reduce_retracing=True)
        def extract(x):  # one graph: (augmentation in training mode ->) the backbone part in inference mode
            if aug is not None:
                x = aug(x, training=True)
            return backbone(x, training=False)

        bar = progress_bar(out.shape[0] * out.shape[1], unit_name="image") if progress else None
        if progress:
            console.info(f"computing backbone features of {len(self.images)} {label} images"
                         + (f" ({self.copies} augmented copies)" if augment else "") + " (feature cache)")
        done = 0
        for c in range(self.copies):
            if augment:
                reseed(model, epoch_seed(seed, c, 11), c)
            i = 0
            for xb, _ in self.images.dataset(batch_size):
                f = extract(xb).numpy()
                out[c, i:i + len(f)] = f
                i += len(f)
                done += len(f)
                if bar:
                    bar.update(done)

    def dataset(self, batch_size: int, order: np.ndarray | None = None, epoch: int = 0):
        """Batches of ``(features, one-hot labels)`` of copy ``epoch % copies`` in ``order``."""
        import tensorflow as tf

        from leafnet.data.pipeline import prefetched

        feats = self.features[epoch % self.copies]
        order = np.arange(feats.shape[0]) if order is None else np.asarray(order, dtype=np.int64)
        onehot = self._onehot
        if isinstance(feats, np.memmap):
            def gather(idx):
                return np.ascontiguousarray(feats[idx])

            def read(idx):
                f = tf.numpy_function(gather, [idx], tf.float32, stateful=False)
                f.set_shape([None, *feats.shape[1:]])
                return f, tf.gather(onehot, idx)

            ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(read)
        else:
            # One constant per copy, shared by every epoch's dataset (a segment of epochs
            # builds its datasets together).
            table = self._tables.get(epoch % self.copies)
            if table is None:
                table = self._tables[epoch % self.copies] = tf.constant(feats)

            def take(idx):
                return tf.gather(table, idx), tf.gather(onehot, idx)

            ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(take)
        return prefetched(ds)


def caching_plan(setting: str, phase: str, from_scratch: bool, model, mixing: bool) -> tuple[bool, str]:
    """Whether to cache features for a phase, and why (or why not), from the
    ``transfer.cache_features`` setting: ``auto`` (where exact), ``on``, ``off``."""
    if setting == "off":
        return False, "off"
    if phase != "transfer":
        return False, "only the transfer phase has a frozen backbone"
    if from_scratch:
        return False, "the backbone has random weights and trains in the transfer phase"
    if mixing:
        return False, "MixUp / CutMix mix images, not features"
    if augmentation_active(model) and setting == "auto":
        return False, ("in-model augmentation is on, so cached features would not be exact; "
                       "set transfer.cache_features: on (with transfer.feature_copies K) to cache K augmented copies")
    return True, "exact" if not augmentation_active(model) else "augmented copies"


def phase_feature_caches(cfg, phase: str, model, train, val, *, cache_dir, from_scratch: bool,
                         say: Callable[[str], None]) -> tuple | None:
    """The (train, val) feature caches when ``phase`` trains the head on cached backbone
    features (see :func:`caching_plan`), else None; ``say`` prints the trainer's notes.

    Args:
        cfg: the run's config (``data.cache_features``, ``data.feature_copies``, ``augment``).
        phase: ``transfer`` or ``finetune``.
        model: the classifier.
        train, val: the ImageSets (``val`` None: no validation).
        cache_dir: where features too large for memory go (the run's ``cache/``).
        from_scratch: the backbone has random weights.
    """
    a = cfg.augment
    use, why = caching_plan(cfg.data.cache_features, phase, from_scratch, model, mixing=bool(a.mixup or a.cutmix))
    if not use:
        if cfg.data.cache_features == "on" or (phase == "transfer" and "augmentation is on" in why):
            say(f"  no feature cache: {why}")
        return None
    copies = cfg.data.feature_copies if why == "augmented copies" else 1
    common = dict(seed=cfg.run.seed, cache_dir=cache_dir, batch_size=max(cfg.data.batch_size, 32),
                  progress=cfg.run.verbose == 1)
    train_cache = FeatureCache(model, train, copies=copies, augment=why == "augmented copies", label="train", **common)
    val_cache = None if val is None else FeatureCache(model, val, copies=1, augment=False, label="val", **common)
    say(f"  feature cache ({why}{f', {copies} copies' if copies > 1 else ''}): the head trains on "
        f"{train_cache.features.shape[2:]} backbone features computed once")
    return train_cache, val_cache
