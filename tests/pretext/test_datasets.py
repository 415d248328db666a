"""The pretext datasets: each copy carries the label of the transformation it received."""

import numpy as np
import pytest
from PIL import Image

from leafnet.data.pipeline import ImageSet
from leafnet.errors import ConfigError
from leafnet.pretext.datasets import PretextSet
from leafnet.pretext.task import Perturbation, get_task

S = 8


def image_set(tmp_path, arrays):
    paths = []
    for i, a in enumerate(arrays):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(a).save(p)
        paths.append(p)
    base = ImageSet(paths, np.zeros(len(paths)), 1, S)
    base.cache("memory")
    return base


def batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def marker(img):
    """(row, col) of the single bright pixel."""
    r, c = np.unravel_index(np.argmax(img[..., 0]), img.shape[:2])
    return int(r), int(c)


def test_rotation_copies_are_turned_counter_clockwise_and_labelled(tmp_path):
    a = np.zeros((S, S, 3), np.uint8)
    a[1, 5] = 255          # top row, right half: no rotation maps it onto itself
    a[6, 2, 1] = 99        # a second, green mark makes the pattern fully asymmetric
    pset = PretextSet(image_set(tmp_path, [a]), "rotation", seed=0)
    x, y = batches(pset.dataset(batch_size=3))
    assert x.shape == (4, S, S, 3) and pset.labels.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(y, np.eye(4))
    # Counter-clockwise by 90 degrees: (r, c) -> (S-1-c, r).
    expected = [(1, 5), (S - 1 - 5, 1), (S - 1 - 1, S - 1 - 5), (5, S - 1 - 1)]
    assert [marker(img) for img in x] == expected
    np.testing.assert_array_equal(x[0], a.astype(np.float32))
    assert x[1][S - 1 - 2, 6, 1] == 99  # the green mark turns with it


def test_rotation_follows_the_order_it_is_given(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (S, S, 3), dtype=np.uint8) for _ in range(3)]
    pset = PretextSet(image_set(tmp_path, arrays), "rotation", seed=0)
    order = np.random.default_rng(1).permutation(len(pset))
    assert pset.dataset(batch_size=5, order=order).options().autotune.enabled is False
    x, y = batches(pset.dataset(batch_size=5, order=order))
    for img, onehot, i in zip(x, y, order):
        k = int(onehot.argmax())
        assert k == i % 4
        np.testing.assert_array_equal(img, np.rot90(arrays[i // 4], k).astype(np.float32))


def test_perturbation_pastes_a_square_of_the_label_colour(tmp_path):
    grey = np.full((S, S, 3), 128, np.uint8)
    pset = PretextSet(image_set(tmp_path, [grey] * 3), "perturbation", seed=3, epoch=0)
    x, y = batches(pset.dataset(batch_size=4))
    assert np.bincount(pset.labels).tolist() == [3, 3]
    params = pset.params()
    for i, (img, onehot) in enumerate(zip(x, y)):
        label = int(onehot.argmax())
        assert label == i % 2
        changed = (img != 128).all(axis=-1)
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        side = len(rows)
        assert len(cols) == side and changed.sum() == side * side, "a solid square"
        assert S // 8 <= side <= S // 2
        assert (rows[0], cols[0], side) == tuple(params[i])
        assert set(np.unique(img[changed])) == {255.0 * label}


def test_perturbation_is_a_function_of_seed_and_epoch(tmp_path):
    base = image_set(tmp_path, [np.full((S, S, 3), 128, np.uint8)] * 20)
    a, b = PretextSet(base, "perturbation", seed=1, epoch=4), PretextSet(base, "perturbation", seed=1, epoch=4)
    np.testing.assert_array_equal(a.params(), b.params())
    b.epoch = 5
    assert not np.array_equal(a.params(), b.params())
    val = PretextSet(base, "perturbation", seed=1, epoch=None)
    np.testing.assert_array_equal(val.params(), PretextSet(base, "perturbation", seed=1).params())
    # the same index gives the same copy whatever the batch order
    order = np.random.default_rng(0).permutation(len(a))
    x_ordered, _ = batches(a.dataset(7, order))
    x_plain, _ = batches(a.dataset(7))
    np.testing.assert_array_equal(x_ordered, x_plain[order])


def test_square_sizes_span_the_range():
    p = Perturbation().params(2000, 64, np.random.default_rng(0))
    assert p[:, 2].min() == 8 and p[:, 2].max() == 32
    assert (p[:, 0] + p[:, 2] <= 64).all() and (p[:, 1] + p[:, 2] <= 64).all() and (p >= 0).all()


def test_unknown_task_is_refused():
    with pytest.raises(ConfigError, match="unknown pretext task 'jigsaw'; valid: rotation, perturbation"):
        get_task("jigsaw")
