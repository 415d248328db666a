"""Tests for leafnet.datasets.render: one leaf image, its background, disease spots and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from leafnet.datasets import render_leaf


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
