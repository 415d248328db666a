"""The tf.data input pipeline: decode once, cache as uint8, feed shuffled batches.

Images are decoded in parallel (AUTOTUNE), resized to the model's square input and
kept as uint8 in memory, in a file in the run folder, or not at all (re-read each
epoch), by size. Each epoch's order is a permutation that depends only on the seed
and the epoch number, so a resumed run sees exactly the batches an uninterrupted run
would have seen. Augmentation is not here: it lives in the model (Keras layers that
are active only while training).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from leafnet import console
from leafnet.data.codec_messages import quiet_decoders
from leafnet.data.decode import decode_image  # the decoder (EXIF orientation, pixel limit)
from leafnet.runs import atomic_path

AUTOTUNE = tf.data.AUTOTUNE


def prefetched(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` prefetched, with tf.data's autotuning off: how every leafnet pipeline ends.

    Freeing an autotuned iterator, which Keras does when ``fit``, ``evaluate`` or
    ``predict`` returns, waits for the autotuning thread to wake, which can take seconds.
    Without autotuning, ``num_parallel_calls=AUTOTUNE`` runs one call per core and
    ``prefetch(AUTOTUNE)`` sizes its buffer by itself: enough for these CPU-bound maps.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(AUTOTUNE).with_options(options)


def resize_uint8(img: tf.Tensor, size: int) -> tf.Tensor:
    """Resize to ``size`` x ``size`` (antialiased bilinear) and round back to uint8."""
    out = tf.image.resize(img, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def load_image(path: tf.Tensor, size: int) -> tf.Tensor:
    """A file path -> uint8 ``[size, size, 3]``, exactly as training sees it."""
    return resize_uint8(decode_image(tf.io.read_file(path)), size)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle order of epoch ``epoch`` (0-based): a function of seed and epoch only."""
    return np.random.default_rng([seed, 0x5EED, epoch]).permutation(n)


def balanced_order(labels: Sequence[int], seed: int, epoch: int) -> np.ndarray:
    """An epoch that draws every class equally often (``data.balance: oversample``).

    Each class contributes as many indices as the largest class: all of its images,
    topped up by a random draw with replacement; the result is shuffled. A function of
    (labels, seed, epoch) only.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 0xBA1, epoch])
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max()
    parts = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        extra = rng.choice(idx, size=target - len(idx), replace=True) if target > len(idx) else idx[:0]
        parts.append(np.concatenate([idx, extra]))
    return rng.permutation(np.concatenate(parts))


def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def choose_cache(mode: str, n: int, size: int) -> str:
    """Resolve ``auto``: memory when the uint8 images fit in a quarter of RAM, else disk."""
    if mode != "auto":
        return mode
    return "memory" if n * size * size * 3 <= _ram_bytes() // 4 else "disk"


@dataclass
class ImageSet:
    """A list of labelled image files read at one square size.

    Args:
        paths: image files.
        labels: class index per file.
        num_classes: number of classes (width of the one-hot labels).
        size: square input size.
    """

    paths: Sequence[str]
    labels: Sequence[int]
    num_classes: int
    size: int

    def __post_init__(self):
        self.paths = [str(p) for p in self.paths]
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self._mode = "none"
        self._images = None        # tf.Tensor (memory) or np.memmap (disk)
        self.onehot = tf.one_hot(self.labels, self.num_classes, dtype=tf.float32)  # [N, C] float32 labels

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def cache_mode(self) -> str:
        return self._mode

    def fingerprint(self, hashes: Sequence[str] | None = None) -> str:
        """Identifies the decoded content: files (and their hashes when known) and size."""
        h = hashlib.sha1(f"v1|{self.size}|".encode())
        for i, p in enumerate(self.paths):
            h.update(p.encode("utf-8", "surrogateescape"))
            h.update((hashes[i] if hashes is not None else "").encode())
        return h.hexdigest()[:16]

    def _decode_all(self, out: np.ndarray, progress: bool, label: str) -> None:
        ds = tf.data.Dataset.from_tensor_slices(self.paths)
        ds = ds.map(lambda p: load_image(p, self.size), num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = prefetched(ds.batch(64))
        bar = None
        if progress:
            from leafnet.console import progress_bar

            console.info(f"decoding {len(self)} {label} images at {self.size}x{self.size}")
            bar = progress_bar(len(self), unit_name="image")
        i = 0
        with quiet_decoders():   # a damaged-but-decodable JPEG was reported by the scan already
            for batch in ds:
                batch = batch.numpy()
                out[i:i + len(batch)] = batch
                i += len(batch)
                if bar:
                    bar.update(i)

    def cache(self, mode: str, cache_dir: str | os.PathLike | None = None,
              hashes: Sequence[str] | None = None, progress: bool = False, label: str = "") -> str:
        """Decode every image once and keep it (``memory`` / ``disk``), or not (``none``).

        The disk cache is a uint8 file named by :meth:`fingerprint`, written atomically
        and reused when the files, their content and the size are unchanged.

        Returns:
            The mode used.
        """
        mode = choose_cache(mode, len(self), self.size)
        shape = (len(self), self.size, self.size, 3)
        if mode == "memory":
            arr = np.empty(shape, dtype=np.uint8)
            self._decode_all(arr, progress, label)
            self._images = tf.constant(arr)
        elif mode == "disk":
            if cache_dir is None:
                raise ValueError("a disk cache needs cache_dir")
            cache_dir = Path(cache_dir)
            cache_dir.mkdir(parents=True, exist_ok=True)
            path = cache_dir / f"{label or 'images'}-{self.fingerprint(hashes)}.u8"
            if not (path.exists() and path.stat().st_size == int(np.prod(shape))):
                with atomic_path(path) as tmp:
                    mm = np.memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                    self._decode_all(mm, progress, label)
                    mm.flush()
                    del mm
            self._images = np.memmap(path, mode="r", dtype=np.uint8, shape=shape)
        self._mode = mode
        return mode

    def dataset(self, batch_size: int, order: np.ndarray | None = None) -> tf.data.Dataset:
        """Batches of ``(float32 images 0..255 [B, S, S, 3], one-hot labels [B, C])``.

        Args:
            batch_size: images per batch (the last batch may be smaller).
            order: indices to visit (e.g. :func:`epoch_order`); None keeps file order.
        """
        order = np.arange(len(self)) if order is None else np.asarray(order, dtype=np.int64)
        size, onehot = self.size, self.onehot
        if self._mode == "memory":
            images = self._images
            ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
            ds = ds.map(lambda idx: (tf.cast(tf.gather(images, idx), tf.float32), tf.gather(onehot, idx)),
                        num_parallel_calls=AUTOTUNE)
        elif self._mode == "disk":
            mm = self._images

            def gather(idx):
                return np.ascontiguousarray(mm[idx])

            def read(idx):
                imgs = tf.numpy_function(gather, [idx], tf.uint8, stateful=False)
                imgs.set_shape([None, size, size, 3])
                return tf.cast(imgs, tf.float32), tf.gather(onehot, idx)

            ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(read, num_parallel_calls=AUTOTUNE)
        else:
            paths = tf.constant(self.paths)
            ds = tf.data.Dataset.from_tensor_slices(order)
            ds = ds.map(lambda i: (load_image(tf.gather(paths, i), size), tf.gather(onehot, i)),
                        num_parallel_calls=AUTOTUNE, deterministic=True)
            ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
        return prefetched(ds)

    def steps(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)
