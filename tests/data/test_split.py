import collections

import numpy as np

from leafnet.data.split import stratified_split


def make(n_per_class=(30, 12, 7), dup_every=0):
    labels, hashes = [], []
    for c, n in enumerate(n_per_class):
        for i in range(n):
            labels.append(c)
            hashes.append(f"{c}-{i}")
    return labels, hashes


def test_stratified_counts_per_class():
    labels, hashes = make()
    is_val = stratified_split(labels, hashes, 1 / 6, seed=0)
    per_class = collections.Counter(l for l, v in zip(labels, is_val) if v)
    assert per_class == {0: 5, 1: 2, 2: 1}


def test_deterministic_and_seed_dependent():
    labels, hashes = make()
    a = stratified_split(labels, hashes, 0.25, seed=3)
    b = stratified_split(labels, hashes, 0.25, seed=3)
    c = stratified_split(labels, hashes, 0.25, seed=4)
    assert (a == b).all()
    assert not (a == c).all()
    # Independent of the order files were listed in.
    perm = np.random.default_rng(0).permutation(len(labels))
    d = stratified_split([labels[i] for i in perm], [hashes[i] for i in perm], 0.25, seed=3)
    assert (d == a[perm]).all()


def test_copies_of_one_image_never_straddle_the_split():
    labels, hashes = make((40, 40))
    for i in range(0, 40, 3):            # every third image of class 0 has a copy
        labels.append(0)
        hashes.append(hashes[i])
    for seed in range(20):
        is_val = stratified_split(labels, hashes, 0.3, seed=seed)
        side = {}
        for h, v in zip(hashes, is_val):
            assert side.setdefault(h, v) == v


def test_tiny_classes_keep_a_training_image():
    labels, hashes = make((1, 2, 30))
    is_val = stratified_split(labels, hashes, 0.5, seed=0)
    assert not is_val[0]                 # a single image trains
    assert is_val[1:3].sum() == 1        # two images: one each side
