"""Stratified, seeded train/validation split that never puts two copies of one image on both sides."""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np


def stratified_split(labels: Sequence[int], hashes: Sequence[str], val_fraction: float,
                     seed: int) -> np.ndarray:
    """Return a boolean mask, True for validation.

    Files are grouped by content hash (byte-identical copies form one group, put on one
    side); within each class the groups are shuffled with ``seed`` and the first
    ``round(n * val_fraction)`` images (at least one when the class has two or more
    groups, never all of them) go to validation. The result depends only on the
    inputs and ``seed``.

    Args:
        labels: class index per file.
        hashes: content hash per file.
        val_fraction: fraction of each class for validation, in [0, 1) (0: none).
        seed: split seed.
    """
    labels = np.asarray(labels)
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, h in enumerate(hashes):
        groups[h].append(i)
    by_class: dict[int, list[list[int]]] = collections.defaultdict(list)
    for members in groups.values():
        # A group whose copies sit in several classes goes with its first file's class.
        by_class[int(labels[members[0]])].append(members)
    is_val = np.zeros(len(labels), dtype=bool)
    if val_fraction <= 0:
        return is_val
    for label in sorted(by_class):
        class_groups = sorted(by_class[label], key=lambda g: hashes[g[0]])
        rng = np.random.default_rng([seed, label])
        order = rng.permutation(len(class_groups))
        n_images = sum(len(g) for g in class_groups)
        target = int(round(n_images * val_fraction))
        if len(class_groups) >= 2:
            target = max(target, 1)
        taken = 0
        for gi in order:
            group = class_groups[gi]
            if taken >= target or taken + len(group) >= n_images:
                continue
            is_val[group] = True
            taken += len(group)
    return is_val
