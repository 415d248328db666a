"""Pretext tasks: how a copy of an image is transformed, and the label that transformation is.

A task has ``classes`` (K of them); copy ``k`` of an image is transformed by
:meth:`PretextTask.apply` with label ``k``. Any randomness (where the square goes)
comes from :meth:`PretextTask.params`, drawn with NumPy from a generator the caller
seeds with (seed, epoch), so an epoch is the same whether or not the run was resumed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leafnet.errors import ConfigError


class PretextTask:
    """Base class: ``name``, ``classes`` and the two methods below."""

    name: str = ""
    classes: tuple[str, ...] = ()
    n_params: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def params(self, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
        """Random parameters of ``n`` copies at ``size`` px: int32 ``[n, n_params]``."""
        return np.zeros((n, self.n_params), dtype=np.int32)

    def apply(self, images, labels, params):
        """Transform a batch: float32 ``[B, S, S, 3]`` (0..255), int labels ``[B]``, params
        ``[B, n_params]`` -> float32 ``[B, S, S, 3]``."""
        raise NotImplementedError

    def adapt_config(self, cfg) -> list[str]:
        """Turn off augmentations that would change the label; return a note for each change."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Rotation(PretextTask):
    """Every image in 4 copies rotated counter-clockwise by 0, 90, 180 and 270 degrees
    (Gidaris et al. 2018); a 4-way classifier learns which way up the image is."""

    name = "rotation"
    classes = ("rot0", "rot90", "rot180", "rot270")
    # Random rotations up to 36 degrees keep "which way up" readable (45 would not).
    MAX_ROTATION = 0.1

    def apply(self, images, labels, params):
        import tensorflow as tf

        # tf.image.rot90 turns counter-clockwise, like numpy.rot90; pick copy k per image.
        turned = tf.stack([tf.image.rot90(images, k) for k in range(4)], axis=1)
        return tf.gather(turned, tf.cast(labels, tf.int32), axis=1, batch_dims=1)

    def adapt_config(self, cfg) -> list[str]:
        notes = []
        a = cfg.augment
        if a.flip != "none":
            notes.append(f"augment.flip {a.flip} -> none (a flip turns a 90-degree rotation into a 270-degree one)")
            a.flip = "none"
        if a.rotation > self.MAX_ROTATION:
            notes.append(f"augment.rotation {a.rotation:g} -> {self.MAX_ROTATION:g} (larger random rotations "
                         "blur which copy an image is)")
            a.rotation = self.MAX_ROTATION
        if a.randaugment:
            notes.append("augment.randaugment -> 0 (its rotations and shears change the label)")
            a.randaugment = 0
        return notes


class Perturbation(PretextTask):
    """A solid square, black (label 0) or white (label 1), pasted at a random place with a
    random side of 1/8 to 1/2 of the image; a 2-way classifier tells its colour."""

    name = "perturbation"
    classes = ("black", "white")
    n_params = 3  # top row, left column, side (pixels)
    MIN_SIDE, MAX_SIDE = 1 / 8, 1 / 2

    def params(self, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = max(1, round(size * self.MIN_SIDE)), max(1, round(size * self.MAX_SIDE))
        side = rng.integers(lo, hi + 1, size=n)
        top = (rng.random(n) * (size - side + 1)).astype(np.int64)
        left = (rng.random(n) * (size - side + 1)).astype(np.int64)
        return np.stack([top, left, side], axis=1).astype(np.int32)

    def apply(self, images, labels, params):
        import tensorflow as tf

        size = tf.shape(images)[1]
        r = tf.range(size)[None, :]
        top, left, side = params[:, 0:1], params[:, 1:2], params[:, 2:3]
        rows = (r >= top) & (r < top + side)                                   # [B, S]
        cols = (r >= left) & (r < left + side)
        inside = (rows[:, :, None] & cols[:, None, :])[..., None]              # [B, S, S, 1]
        colour = tf.cast(labels, tf.float32)[:, None, None, None] * 255.0
        return tf.where(inside, colour, images)


TASKS: dict[str, type[PretextTask]] = {"rotation": Rotation, "perturbation": Perturbation}
TASK_NAMES = tuple(TASKS)


def get_task(task: str | PretextTask) -> PretextTask:
    """A task object from its name.

    Raises:
        ConfigError: unknown name, listing the valid ones.
    """
    if isinstance(task, PretextTask):
        return task
    cls: Any = TASKS.get(str(task).strip().lower())
    if cls is None:
        raise ConfigError(f"unknown pretext task {task!r}; valid: {', '.join(TASK_NAMES)}")
    return cls()
