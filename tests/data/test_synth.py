"""Tests for leafnet.data.synth, the synthetic leaf generator."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from leafnet.data.synth import SPECIES, generate, render_leaf


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_species_names_are_fourteen_folder_safe_and_unique():
    assert len(SPECIES) == 14
    assert len(set(SPECIES)) == 14
    for name in SPECIES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name


def test_generate_layout_counts_size_and_mode(tmp_path):
    counts = generate(tmp_path, classes=3, per_class=4, size=32, seed=1)
    assert counts == {SPECIES[0]: 4, SPECIES[1]: 4, SPECIES[2]: 4}
    assert list(counts) == list(SPECIES[:3])
    expected = sorted(f"{s}/{s}_{i:04d}.png" for s in SPECIES[:3] for i in range(4))
    assert _files(tmp_path) == expected  # no temporary files left behind either
    for rel in expected:
        with Image.open(tmp_path / rel) as img:
            assert img.format == "PNG"
            assert img.mode == "RGB"
            assert img.size == (32, 32)


def test_generate_jpg_and_progress(tmp_path):
    calls = []
    generate(tmp_path, classes=2, per_class=3, size=24, image_format="jpg", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 6) for i in range(1, 7)]
    files = _files(tmp_path)
    assert len(files) == 6 and all(f.endswith(".jpg") for f in files)
    with Image.open(tmp_path / files[0]) as img:
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == (24, 24)


def test_generate_is_byte_identical_for_same_arguments(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, classes=2, per_class=3, size=40, seed=7, disease=0.5)
    generate(b, classes=2, per_class=3, size=40, seed=7, disease=0.5)
    files = _files(a)
    assert files == _files(b) and len(files) == 6
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_smaller_per_class_is_a_prefix_and_seed_changes_images(tmp_path):
    small, big, other = tmp_path / "small", tmp_path / "big", tmp_path / "other"
    generate(small, classes=2, per_class=2, size=32, seed=3)
    generate(big, classes=2, per_class=5, size=32, seed=3)
    generate(other, classes=2, per_class=2, size=32, seed=4)
    for rel in _files(small):
        assert (small / rel).read_bytes() == (big / rel).read_bytes(), rel
        assert (small / rel).read_bytes() != (other / rel).read_bytes(), rel
    assert len(_files(big)) == 10


def test_render_leaf_is_deterministic_and_respects_background():
    img = render_leaf(4, np.random.default_rng([0, 4, 0]), size=48, background="black")
    again = render_leaf(4, np.random.default_rng([0, 4, 0]), size=48, background="black")
    assert img.mode == "RGB" and img.size == (48, 48)
    assert np.array_equal(np.asarray(img), np.asarray(again))
    black = np.stack([np.asarray(render_leaf(s, np.random.default_rng(s), 48, "black")) for s in range(14)])
    clutter = np.stack([np.asarray(render_leaf(s, np.random.default_rng(s), 48, "clutter")) for s in range(14)])
    # A black background leaves the border black; clutter is textured ground.
    border = np.concatenate([black[:, :2].reshape(-1), black[:, -2:].reshape(-1)])
    ground = np.concatenate([clutter[:, :2].reshape(-1, 3), clutter[:, -2:].reshape(-1, 3)]).astype(np.float64)
    assert np.median(border) < 6
    assert np.median(ground.mean(axis=1)) > 12
    assert ground.mean(axis=1).std() > 4


def _leaf_masks(species, n=24, size=48):
    """Leaf pixels of black-background renders (the leaf is the only non-black thing)."""
    out = []
    for i in range(n):
        img = np.asarray(render_leaf(species, np.random.default_rng([99, species, i]), size, "black"))
        out.append(img.max(axis=2) > 30)
    return np.stack(out)


def test_species_differ_in_shape_not_only_colour():
    # Leaf area relative to the squared diagonal of its bounding box: a thin grass blade
    # and a round leaf must differ clearly, whatever their colours and poses.
    def compactness(masks):
        vals = []
        for m in masks:
            ys, xs = np.nonzero(m)
            vals.append(m.sum() / ((np.ptp(ys) + 1) ** 2 + (np.ptp(xs) + 1) ** 2))
        return np.array(vals)

    grass = compactness(_leaf_masks(SPECIES.index("linear_grass")))
    round_ = compactness(_leaf_masks(SPECIES.index("orbicular_peltate")))
    assert round_.min() > 0.3
    assert grass.max() < 0.15


def test_mean_images_of_two_species_differ():
    def mean_image(species, seed, n=30):
        imgs = [np.asarray(render_leaf(species, np.random.default_rng([seed, species, i]), 32), np.float64) for i in range(n)]
        return np.mean(imgs, axis=0)

    maple, maple_again = mean_image(0, 5), mean_image(0, 6)
    grass = mean_image(SPECIES.index("linear_grass"), 5)
    between = np.abs(maple - grass).mean()
    within = np.abs(maple - maple_again).mean()
    assert between > 1.5 * within


def test_disease_spots_add_brown_yellow_pixels():
    def spotty_fraction(disease):
        frac = []
        for i in range(12):
            img = render_leaf(5, np.random.default_rng([1, 5, i]), 64, "black", disease=disease)
            hsv = np.asarray(img.convert("HSV"), dtype=np.float64)
            a = np.asarray(img, dtype=np.float64)
            # Brown/yellow: red channel at least as strong as green, clearly above blue.
            frac.append(((a[..., 0] >= a[..., 1]) & (a[..., 0] > a[..., 2] + 30) & (hsv[..., 2] > 40)).mean())
        return np.mean(frac)

    assert spotty_fraction(1.0) > spotty_fraction(0.0) + 0.01


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"classes": 20}, "classes"),
        ({"classes": 1}, "classes"),
        ({"classes": 2.5}, "classes"),
        ({"per_class": 0}, "per_class"),
        ({"size": 8}, "size"),
        ({"seed": -1}, "seed"),
        ({"disease": 1.5}, "disease"),
        ({"image_format": "gif"}, "image_format"),
        ({"progress": 3}, "progress"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError) as info:
        generate(tmp_path, **{"classes": 2, "per_class": 1, "size": 16, **kwargs})
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{name} must be")
    key, value = next(iter(kwargs.items()))
    assert f"received {key}={value!r}" in msg
    assert _files(tmp_path) == []


def test_classes_message_names_allowed_range(tmp_path):
    with pytest.raises(ValueError, match=r"^classes must be an integer between 2 and 14; received classes=20$"):
        generate(tmp_path, classes=20)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"species": 14}, "species"),
        ({"species": -1}, "species"),
        ({"size": 15}, "size"),
        ({"background": "white"}, "background"),
        ({"disease": -0.1}, "disease"),
        ({"rng": 0}, "rng"),
    ],
)
def test_render_leaf_rejects_bad_arguments(kwargs, name):
    args = {"species": 0, "rng": np.random.default_rng(0), "size": 32, "background": "black", "disease": 0.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name} must be .*; received {name}="):
        render_leaf(**args)
