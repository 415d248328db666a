"""A pretext dataset: unlabelled images, each in K transformed copies labelled by the task.

Index ``i`` of a :class:`PretextSet` is copy ``i % K`` of base image ``i // K``, with
label ``i % K``: every image appears in every class in each epoch, so the labels are
balanced and say nothing about the image's content. The set has the interface of
:class:`leafnet.data.pipeline.ImageSet` (``labels``, ``len``, ``dataset``), so the
trainer runs it like any labelled set.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from leafnet.data.pipeline import AUTOTUNE, ImageSet, prefetched
from leafnet.pretext.task import PretextTask, get_task

# Streams of the per-copy random parameters: fixed for validation, per epoch for training.
_VAL_STREAM, _TRAIN_STREAM = 0xFA1, 0x7A1


class PretextSet:
    """Base images turned into a labelled pretext set.

    Args:
        base: the images (an :class:`ImageSet`; its labels are ignored).
        task: a :class:`PretextTask` or its name.
        seed: run seed.
        epoch: the epoch whose random parameters :meth:`dataset` draws (the trainer sets it
            before each epoch); None for fixed parameters (validation).
    """

    def __init__(self, base: ImageSet, task: PretextTask | str, seed: int, epoch: int | None = None):
        self.base = base
        self.task = get_task(task)
        self.seed = int(seed)
        self.epoch = epoch
        k = self.task.num_classes
        self.num_classes = k
        self.size = base.size
        self.labels = np.tile(np.arange(k, dtype=np.int64), len(base))
        self.paths = [p for p in base.paths for _ in range(k)]

    def __len__(self) -> int:
        return len(self.base) * self.num_classes

    def __repr__(self) -> str:
        return f"PretextSet({self.task.name}, {len(self.base)} images x {self.num_classes}, epoch={self.epoch})"

    @property
    def cache_mode(self) -> str:
        return self.base.cache_mode

    def cache(self, mode: str, cache_dir: str | os.PathLike | None = None, hashes: Sequence[str] | None = None,
              progress: bool = False, label: str = "") -> str:
        """Decode the base images once (see :meth:`ImageSet.cache`)."""
        return self.base.cache(mode, cache_dir, hashes, progress=progress, label=label)

    def params(self) -> np.ndarray:
        """The random parameters of every copy for the current epoch: ``[len, n_params]``."""
        key = [self.seed, _VAL_STREAM] if self.epoch is None else [self.seed, _TRAIN_STREAM, int(self.epoch)]
        return self.task.params(len(self), self.size, np.random.default_rng(key))

    def dataset(self, batch_size: int, order: np.ndarray | None = None) -> tf.data.Dataset:
        """Batches of ``(transformed float32 images 0..255, one-hot pretext labels)``.

        Args:
            batch_size: copies per batch.
            order: indices to visit (e.g. the trainer's epoch order); None keeps index order.
        """
        order = np.arange(len(self)) if order is None else np.asarray(order, dtype=np.int64)
        k = self.num_classes
        images = self.base.dataset(batch_size, order // k).map(lambda x, _: x)
        index = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        params = tf.constant(self.params())
        task = self.task

        def transform(x, idx):
            label = idx % k
            return task.apply(x, label, tf.gather(params, idx)), tf.one_hot(label, k, dtype=tf.float32)

        ds = tf.data.Dataset.zip((images, index)).map(transform, num_parallel_calls=AUTOTUNE, deterministic=True)
        return prefetched(ds)

    def steps(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)
