"""--feature-layer: the backbone cut at a named layer under an MLP head (AlexNet's classifier)."""

import numpy as np
import pytest

from leafnet.config import ModelConfig, load_config, mlp_units
from leafnet.errors import ConfigError
from leafnet.models.classifier import backbone_spec, build_classifier, resolve_finetune_blocks, set_trainable


def cut_model(layer="conv4_relu", units="64,32", backbone="alexnet"):
    cfg = ModelConfig(backbone=backbone, weights="none", feature_layer=layer, mlp_units=units, dropout=0.5)
    spec = backbone_spec(cfg)
    return build_classifier(spec, 3, 32, cfg), spec


def test_alexnet_cut_at_conv4_with_an_mlp_head():
    model, spec = cut_model()
    names = [l.name for l in model.layers]
    assert "conv4_relu" in names and not any(n.startswith("conv5_") for n in names)
    assert names[names.index("conv4_relu") + 1:] == ["head_flatten", "head_dropout1", "head_dense1",
                                                     "head_dropout2", "head_dense2", "predictions"]
    # 32 px: conv1 /4 -> 8, pool -> 4, conv2, pool -> 2; conv4 has 256 channels
    assert model.get_layer("head_flatten").output.shape[-1] == 2 * 2 * 256
    assert model.get_layer("head_dense1").units == 64 and model.get_layer("head_dense2").units == 32
    assert model.output.shape[-1] == 3
    assert spec.block_names == ["stem", "conv1", "conv2", "conv3", "conv4"]


def test_finetune_blocks_count_the_blocks_the_cut_keeps():
    model, spec = cut_model()
    assert resolve_finetune_blocks(spec, 1) == ["conv4"]
    with pytest.raises(ConfigError, match="finetune.blocks=5 but alexnet has 4 blocks"):
        resolve_finetune_blocks(spec, 5)
    counts = set_trainable(model, spec, "finetune", blocks=1)
    assert counts["conv4"] == 3 * 3 * 384 * 256 + 256 and counts["conv3"] == 0
    counts = set_trainable(model, spec, "transfer")
    assert sum(v for k, v in counts.items() if k != "head") == 0
    assert counts["head"] == (1024 * 64 + 64) + (64 * 32 + 32) + (32 * 3 + 3)


def test_no_mlp_layers_is_flatten_then_classes():
    model, _ = cut_model(layer="block3_pool", units=0, backbone="simple-cnn")
    assert [l.name for l in model.layers][-2:] == ["head_flatten", "predictions"]
    assert model.get_layer("predictions").kernel.shape == (4 * 4 * 128, 3)


def test_unknown_feature_layers_are_refused():
    with pytest.raises(ConfigError, match=r"'conv4_rleu': alexnet has no such layer \(did you mean conv4_relu"):
        cut_model(layer="conv4_rleu")
    with pytest.raises(ConfigError, match="'head_pool' is in none of simple-cnn's blocks"):
        cut_model(layer="head_pool", backbone="simple-cnn")


@pytest.mark.parametrize("value, units", [("4096,4096", [4096, 4096]), (512, [512]), (0, []), ("128, 64", [128, 64])])
def test_mlp_units(value, units):
    assert mlp_units(value) == units
    assert load_config(None, overrides=[f"model.mlp_units={value}"]).model.mlp_units == value


@pytest.mark.parametrize("bad", ["4096,x", "-5", "1,,2", "100000"])
def test_bad_mlp_units_are_refused(bad):
    with pytest.raises(ConfigError, match="model.mlp_units must be comma-separated integers"):
        load_config(None, overrides=[f"model.mlp_units={bad}"])


def test_fit_with_a_feature_layer_from_the_cli(leaves, tmp_path, run_cli, tiny_config):
    """A run folder's backbone under a cut: the kept layers load, stay frozen in phase 1, and the
    fine-tune phase trains only the last kept block."""
    import leafnet
    from leafnet.runs import Run

    src = leafnet.fit(tiny_config(leaves, tmp_path / "src", transfer__epochs=1, finetune__epochs=0))
    code, out, err = run_cli("fit", "--data", leaves, "--backbone", "simple-cnn", "--weights", src.root,
                             "--feature-layer", "block3_pool", "--set", "model.mlp_units=32", "--image-size", "32",
                             "--batch-size", "16", "--epochs", "1", "--finetune-epochs", "1", "--finetune-blocks", "1",
                             "--run-dir", tmp_path / "cut", "--quiet")
    assert code == 0, err
    model = Run(tmp_path / "cut").load_model()
    assert not any(l.name.startswith(("block4_", "block5_")) for l in model.layers)
    source = src.load_model()
    for name in ("block1_conv", "block2_conv", "block2_bn", "block3_bn"):
        for a, b in zip(source.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=name)
    changed = [np.array_equal(a, b) for a, b in zip(source.get_layer("block3_conv").get_weights(),
                                                    model.get_layer("block3_conv").get_weights())]
    assert changed == [False]  # block3's conv fine-tuned (its BN stays frozen)
