"""--weights hub:PRESET: a keras-hub backbone, flat in the classifier, with a block map.

Offline: the preset is a randomly initialised keras-hub backbone saved to a local folder
with ``save_to_preset`` (the layout ``from_preset`` reads; downloads are keras-hub's own).
"""

import sys

import numpy as np
import pytest

from leafnet.errors import LeafnetError

# keras-hub's presets warn while loading ("Skipping nested container"): its functional
# backbones have no nested containers to restore; the weights are compared below.
pytestmark = pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")

SMALL_EFFICIENTNET = dict(  # EfficientNet-B0's structure, narrow and one block per stage
    stackwise_width_coefficients=[0.25] * 7, stackwise_depth_coefficients=[1.0] * 7,
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3], stackwise_num_repeats=[1, 1, 1, 2, 1, 1, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192], stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6], stackwise_squeeze_and_excite_ratios=[0.25] * 7,
    stackwise_strides=[1, 2, 2, 2, 1, 2, 1], stackwise_block_types=["v1"] * 7,  # num_features: keras-hub 0.32
    # leaves it out of get_config, so a preset saved with it does not load
)


def test_missing_keras_hub_is_one_line_naming_the_extra(monkeypatch):
    from leafnet.config import ModelConfig
    from leafnet.models.classifier import backbone_spec

    monkeypatch.setitem(sys.modules, "keras_hub", None)  # import keras_hub -> ImportError
    with pytest.raises(LeafnetError, match=r"needs keras-hub.*pip install leafnet\[hub\]"):
        backbone_spec(ModelConfig(weights="hub:efficientnet_b0_ra_imagenet"))


def test_empty_preset_is_refused():
    from leafnet.models.hub import canonical

    with pytest.raises(LeafnetError, match="hub: needs a preset"):
        canonical("hub:")


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    kh = pytest.importorskip("keras_hub")
    import keras

    keras.utils.set_random_seed(0)
    backbone = kh.models.EfficientNetBackbone(**SMALL_EFFICIENTNET)
    folder = tmp_path_factory.mktemp("hub") / "tiny_efficientnet"
    backbone.save_to_preset(str(folder))
    return folder, {l.name: [np.array(w) for w in l.get_weights()] for l in backbone.layers if l.weights}


def test_hub_backbone_is_flat_with_its_block_map(preset):
    from leafnet.config import ModelConfig
    from leafnet.models.classifier import backbone_spec, build_classifier, layer_blocks, set_trainable

    folder, weights = preset
    cfg = ModelConfig(weights=f"hub:{folder}", dropout=0.0)
    spec = backbone_spec(cfg)
    assert spec.name == "hub-efficientnet"
    assert spec.block_names == ["stem"] + [f"block{i}" for i in range(1, 8)]
    model = build_classifier(spec, 3, 32, cfg)
    names = {l.name for l in model.layers}
    assert {"stem_conv", "block4b_project", "top_conv", "preprocess_hub", "head_pool"} <= names
    blocks = layer_blocks(model, spec)
    assert blocks["stem_conv"] == "stem" and blocks["block4b_project"] == "block4" and blocks["top_bn"] == "block7"
    for name, arrays in weights.items():  # keras-hub's weights, as the preset holds them
        for a, b in zip(arrays, model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=name)
    counts = set_trainable(model, spec, "finetune", blocks=1)
    assert counts["block7"] > 0 and counts["block6"] == 0


@pytest.mark.slow
def test_fit_with_hub_weights(preset, leaves, tmp_path, tiny_config):
    import leafnet

    folder, weights = preset
    cfg = tiny_config(leaves, tmp_path / "run", model__backbone="b4", model__weights=f"hub:{folder}",
                      transfer__epochs=1, finetune__epochs=1, finetune__blocks=1)
    run = leafnet.fit(cfg)
    model = run.load_model()
    stored = (run.root / "config.yaml").read_text()
    assert "backbone: hub-efficientnet" in stored and f"hub:{folder}" in stored
    for name in ("stem_conv", "block3a_project", "block6a_expand_conv"):  # frozen in both phases
        for a, b in zip(weights[name], model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert not np.array_equal(weights["block7a_project"][0], model.get_layer("block7a_project").get_weights()[0])


@pytest.mark.parametrize("module, arch", [("convert_resnet", "resnet18"), ("convert_vgg", "vgg11"),
                                          ("convert_densenet", "densenet121"), ("convert_cspnet", "cspresnet50"),
                                          ("convert_mobilenet", "mobilenetv3_small_050"),
                                          ("convert_efficientnet", "efficientnet_b0")])
def test_every_timm_family_has_a_block_map(module, arch):
    """The architectures keras-hub's timm converter builds: every weighted layer in a block."""
    pytest.importorskip("keras_hub")
    import importlib

    from leafnet.models.registry import hub_backbone_spec

    conv = importlib.import_module(f"keras_hub.src.utils.timm.{module}")
    backbone = conv.backbone_cls(**conv.convert_backbone_config({"architecture": arch, "num_features": 1024}))
    names = [l.name for l in backbone.layers]
    spec = hub_backbone_spec(type(backbone).__name__, names, builder=None, default_size=224)
    assert len(spec.trainable_blocks) >= 4
    unmatched = [l.name for l in backbone.layers if l.weights and spec.block_of(l.name) is None]
    assert unmatched == []
    last = [l.name for l in backbone.layers if l.weights][-1]
    assert spec.block_of(last) == spec.block_names[-1]
