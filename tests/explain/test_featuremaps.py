"""Filters and feature maps are paired by output channel; dense weights become pictures."""

from __future__ import annotations

import numpy as np
import pytest

from leafnet.errors import LeafnetError
from leafnet.explain.featuremaps import choose_layers, dense_weight_images, filter_pairs


def _hand_conv():
    """Conv2D 3x3, 3 -> 4 channels, no bias: filter i copies input channel i % 3 (centre tap)
    times (i + 1), so feature map i = (i + 1) * image[1:-1, 1:-1, i % 3]."""
    import keras

    inp = keras.Input((6, 6, 3), name="image")
    out = keras.layers.Conv2D(4, 3, use_bias=False, name="c")(inp)
    model = keras.Model(inp, out)
    kernel = np.zeros((3, 3, 3, 4), "float32")
    for i in range(4):
        kernel[1, 1, i % 3, i] = i + 1.0
    model.get_layer("c").set_weights([kernel])
    return model, kernel


def test_filter_i_is_paired_with_feature_map_i():
    model, kernel = _hand_conv()
    image = np.random.default_rng(0).uniform(0, 255, (6, 6, 3)).astype("float32")
    pairs = filter_pairs(model, image, "c")
    assert pairs["channels"] == [0, 1, 2, 3]
    assert pairs["filters"].shape == (4, 3, 3, 3) and pairs["maps"].shape == (4, 4, 4)
    for j in range(4):
        np.testing.assert_array_equal(pairs["filters"][j], kernel[..., j])
        np.testing.assert_allclose(pairs["maps"][j], (j + 1) * image[1:-1, 1:-1, j % 3], rtol=1e-5)

    some = filter_pairs(model, image, "c", channels=[3, 1])           # order kept, still paired
    np.testing.assert_array_equal(some["filters"][0], kernel[..., 3])
    np.testing.assert_allclose(some["maps"][0], 4 * image[1:-1, 1:-1, 0], rtol=1e-5)
    np.testing.assert_allclose(some["maps"][1], 2 * image[1:-1, 1:-1, 1], rtol=1e-5)
    with pytest.raises(LeafnetError, match="channel 4 is out of range"):
        filter_pairs(model, image, "c", channels=[4])


def test_dense_weights_on_a_flattened_image_are_pictures():
    import keras

    inp = keras.Input((4, 5, 3), name="image")
    flat = keras.layers.Flatten()(inp)
    dense = keras.layers.Dense(2, use_bias=False, name="d")
    model = keras.Model(inp, dense(flat))
    pictures = dense_weight_images(dense)
    assert pictures.shape == (2, 4, 5, 3)
    x = np.random.default_rng(1).normal(size=(1, 4, 5, 3)).astype("float32")
    # unit u's output is the pixel-wise product of its weight picture and the image, summed
    np.testing.assert_allclose(np.asarray(model(x))[0], [(pictures[u] * x[0]).sum() for u in range(2)], rtol=1e-4)
    assert choose_layers(model, None) == ["d"]                # no conv layers: the dense picture only

    head = keras.layers.Dense(2, name="h")
    m2 = keras.Model(inp, head(keras.layers.GlobalAveragePooling2D()(inp)))
    with pytest.raises(LeafnetError, match="does not take a flattened image"):
        dense_weight_images(head)
    with pytest.raises(LeafnetError, match="neither a conv layer"):
        choose_layers(m2, "h")


def test_dense_weights_are_pictures_through_a_dropout_not_through_a_dense():
    import keras

    from leafnet.explain.featuremaps import dense_image_shape

    inp = keras.Input((4, 5, 3), name="image")
    flat = keras.layers.Flatten()(inp)
    after_dropout = keras.layers.Dense(2, name="d")
    model = keras.Model(inp, after_dropout(keras.layers.Activation("relu")(keras.layers.Dropout(0.5)(flat))))
    assert dense_image_shape(after_dropout) == (4, 5, 3)
    assert choose_layers(model, None) == ["d"]
    mixed = keras.layers.Dense(2, name="m")
    keras.Model(inp, mixed(keras.layers.Dense(60)(flat)))     # a dense layer mixes the pixels
    assert dense_image_shape(mixed) is None


def test_early_mid_deep_are_the_first_middle_and_last_conv(tiny_subject):
    model = tiny_subject.model
    assert choose_layers(model, None) == ["block1_conv", "block3_conv", "block5_conv"]
    assert choose_layers(model, "deep,block2_conv,early") == ["block5_conv", "block2_conv", "block1_conv"]
    with pytest.raises(LeafnetError, match="unknown layer 'block9_conv'"):
        choose_layers(model, "block9_conv")


def test_filters_command_writes_one_picture_per_layer(shared_run, tmp_path, run_cli):
    from leafnet.runs import read_csv

    _, run_dir = shared_run
    image = next(r["path"] for r in read_csv(run_dir / "split.csv") if r["subset"] == "val")
    code, out, err = run_cli("filters", run_dir, image, "--max-filters", "6", "--out", tmp_path)
    assert code == 0, err
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["filters_block1_conv.png", "filters_block3_conv.png", "filters_block5_conv.png"]
    assert "block1_conv: 6 filter/map pairs" in out and str(tmp_path) in out
    code, _, err = run_cli("filters", run_dir, image, "--layers", "head_pool", "--out", tmp_path)
    assert code == 2 and "neither a conv layer" in err


@pytest.fixture(scope="module", params=[0.2, 0.0], ids=["dropout0.2", "dropout0"])
def mlp_run(request, leaves, tiny_config, tmp_path_factory):
    """An AlexNet cut at conv4_relu with an MLP head: Flatten, [Dropout,] Dense(32), predictions."""
    import leafnet

    run_dir = tmp_path_factory.mktemp("mlp_run") / "run"
    leafnet.fit(tiny_config(leaves, run_dir, model__backbone="alexnet", model__feature_layer="conv4_relu",
                            model__mlp_units=32, model__dropout=request.param, transfer__epochs=1,
                            finetune__epochs=1, finetune__blocks=1))
    return run_dir


@pytest.mark.slow
def test_filters_draws_the_mlp_heads_dense_weights(mlp_run, tmp_path, run_cli):
    import keras

    from leafnet.explain.featuremaps import filters
    from leafnet.runs import read_csv

    image = next(r["path"] for r in read_csv(mlp_run / "split.csv") if r["subset"] == "val")
    code, out, err = run_cli("filters", mlp_run, image, "--max-filters", "6", "--out", tmp_path)
    assert code == 0, err
    assert f"head_dense1: 6 weight images -> {tmp_path / 'weights_head_dense1.png'}" in out.splitlines()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "filters_conv1_conv.png", "filters_conv2_conv.png", "filters_conv4_conv.png", "weights_head_dense1.png"]
    kernel = np.asarray(keras.saving.load_model(mlp_run / "model.keras").get_layer("head_dense1").kernel)
    entry = filters(mlp_run, image, layers="head_dense1", max_filters=6, plots=False).layers[0]
    assert entry["weights"].shape == (6, 2, 2, 256)                  # conv4_relu's map at 32 px
    np.testing.assert_array_equal(entry["weights"], kernel.T.reshape(32, 2, 2, 256)[:6])
