"""Filter inversions: top:K against a hand computation, the optimisation climbs, tuning picks the best."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leafnet.errors import LeafnetError
from leafnet.explain.inversion import InversionSettings, inversions, parse_filters, tail_median, top_filters


def _conv_with_sums(sums):
    """A Conv2D (3x3, 3 -> len(sums)) whose filter i holds sums[i] spread over its 27 weights,
    signs alternating so that the summed weight and the summed |weight| rank differently."""
    import keras

    inp = keras.Input((8, 8, 3))
    layer = keras.layers.Conv2D(len(sums), 3, name="c")
    keras.Model(inp, layer(inp))
    kernel = np.zeros((3, 3, 3, len(sums)), "float32")
    for i, s in enumerate(sums):
        kernel[..., i] = s / 27.0
        kernel[0, 0, 0, i] += 5.0 * (i % 2)       # +5 and -5 cancel in the sum, not in |w|
        kernel[0, 0, 1, i] -= 5.0 * (i % 2)
    layer.set_weights([kernel, np.full(len(sums), 100.0, "float32")])  # the bias is not a weight sum
    return layer, kernel


def test_top_k_selects_the_largest_summed_weights():
    sums = [0.5, -2.0, 3.0, 0.5, 1.0]
    layer, kernel = _conv_with_sums(sums)
    hand = kernel.sum(axis=(0, 1, 2))
    np.testing.assert_allclose(hand, sums, atol=1e-5)
    top = top_filters(layer, 3)
    assert [i for i, _ in top] == [2, 4, 0]               # the 0.5 tie goes to the lower index
    np.testing.assert_allclose([w for _, w in top], [3.0, 1.0, 0.5], atol=1e-5)
    by_abs = np.argsort(-np.abs(kernel).sum(axis=(0, 1, 2)), kind="stable")[:3]
    assert list(by_abs) != [2, 4, 0]                      # the rule is the signed sum, as documented
    assert parse_filters("top:2", layer) == ([2, 4], top[:2])
    assert parse_filters("4,0,1", layer) == ([4, 0, 1], [])
    with pytest.raises(LeafnetError, match="out of range.*5 filters"):
        parse_filters("0,5", layer)
    with pytest.raises(LeafnetError, match="0,5,9 or top:K"):
        parse_filters("top5", layer)


def test_tail_median_is_the_median_of_the_last_ten():
    curve = np.r_[np.full(20, 100.0), [5, 1, 9, 3, 7, 2, 8, 4, 6, 50]]
    assert tail_median(curve) == 5.5                     # median of 1..9 and 50, not the last (50)


def test_filter_inversion_raises_the_filter_activation(tiny_subject):
    s = InversionSettings(steps=25, lr=8.0, tv=0.0, norm=0.0, seed=3)
    r = inversions(tiny_subject, layer="block2_conv", filters="3,7", settings=s, plots=False)
    assert r.layer == "block2_conv" and r.labels == ["filter 3", "filter 7"]
    assert r.images.shape == (2, 32, 32, 3)
    assert r.images.min() >= 0.0 and r.images.max() <= 255.0
    assert r.losses.shape == r.scores.shape == (25, 2)
    np.testing.assert_allclose(r.losses, -r.scores, rtol=1e-5, atol=1e-6)  # no regularisers: loss = -score
    assert (r.scores[-1] > r.scores[0] + 0.01).all()

    # the score is the mean activation of that channel, measured independently on the result
    import keras

    sub = keras.Model(tiny_subject.model.inputs[0], tiny_subject.model.get_layer("block2_conv").output)
    act = np.asarray(sub(r.images, training=False))
    start = np.asarray(sub(np.full((1, 32, 32, 3), 128.0, "float32"), training=False))
    assert act[0, ..., 3].mean() > start[0, ..., 3].mean() and act[1, ..., 7].mean() > start[0, ..., 7].mean()


def test_regularisers_enter_the_loss(tiny_subject):
    s = InversionSettings(steps=3, tv=0.5, norm=0.1, jitter=0, rotation=0, scale=(1.0, 1.0), blur_every=0)
    r = inversions(tiny_subject, filters="0", settings=s, plots=False)
    assert r.layer == "block5_conv"                                  # the last conv layer by default
    assert (r.losses > -r.scores + 1.0).all()                        # grey noise: L1 norm ~ 0.1 * 128


def test_class_inversion_and_tuning_write_their_files(tiny_subject, tmp_path):
    s = InversionSettings(steps=6, tv=0.0, norm=0.0)
    r = inversions(tiny_subject, classes=["cedar", "ash"], settings=s, tune=True, tune_lrs=(1.0, 16.0),
                   tune_wds=(0.0, 0.01), tune_steps=12, out=tmp_path)
    assert r.labels == ["class cedar", "class ash"] and r.layer is None
    assert len(r.tuning) == 4
    best = min(r.tuning, key=lambda t: t["score"])
    assert (r.settings.lr, r.settings.weight_decay) == (best["lr"], best["weight_decay"])
    for t in r.tuning:
        assert len(t["curve"]) == 12 and t["score"] == pytest.approx(np.median(t["curve"][-10:]))
    assert r.settings.steps == 6 and r.losses.shape == (6, 2)
    from leafnet.runs import read_csv

    rows = read_csv(tmp_path / "tuning.csv")
    assert [(float(x["lr"]), float(x["weight_decay"])) for x in rows] == [(1.0, 0.0), (1.0, 0.01), (16.0, 0.0),
                                                                           (16.0, 0.01)]
    for name in ("inversions.png", "losses.png", "tuning.png"):
        assert (tmp_path / name).stat().st_size > 5000
    saved = json.loads((tmp_path / "inversions.json").read_text())
    assert saved["settings"]["lr"] == best["lr"] and saved["targets"] == ["class cedar", "class ash"]


def test_bad_settings_are_refused(tiny_subject):
    with pytest.raises(LeafnetError, match="lr must be > 0"):
        InversionSettings().replace(lr=0.0)
    with pytest.raises(LeafnetError, match="unknown class 'fir'"):
        inversions(tiny_subject, classes=["fir"], plots=False)
    with pytest.raises(LeafnetError, match="no weights to rank"):
        inversions(tiny_subject, layer="block2_relu", filters="top:2", plots=False)
