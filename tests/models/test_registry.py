import keras
import numpy as np
import pytest

from leafnet.config import ModelConfig
from leafnet.errors import ConfigError
from leafnet.models.classifier import backbone_layers, build_classifier, layer_blocks
from leafnet.models.registry import get_backbone, list_backbones

LARGE = {"efficientnet-b5", "efficientnet-b6", "efficientnet-b7", "efficientnetv2-s", "resnet50v2"}
SPECS = [pytest.param(s.name, marks=pytest.mark.slow) if s.name in LARGE else s.name for s in list_backbones()]


@pytest.mark.parametrize("name", SPECS)
def test_every_backbone_builds_and_its_block_map_covers_it(name):
    spec = get_backbone(name)
    keras.utils.clear_session()
    model = build_classifier(spec, 3, 32, ModelConfig(weights="none", dense_units=8))
    out = model(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32"))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)
    blocks = layer_blocks(model, spec)
    weighted = [l for l in backbone_layers(model, spec) if l.weights]
    assert weighted, "a backbone without weights?"
    # Every layer with weights is in exactly one block of the map.
    for layer in weighted:
        hits = [b for b, rx in spec.blocks if __import__("re").match(rx, layer.name)]
        assert len(hits) == 1, (layer.name, hits)
    # Every trainable block holds weights, in input-to-output order.
    used = [blocks[l.name] for l in weighted]
    for b in spec.trainable_blocks:
        assert b in used, f"block {b} of {name} matches no layer"
    order = [spec.block_names.index(b) for b in used]
    assert order == sorted(order)


def test_aliases_and_unknown_names():
    assert get_backbone("b4").name == "efficientnet-b4"
    assert get_backbone("EfficientNetB4").default_size == 380
    assert get_backbone("V2-S").name == "efficientnetv2-s"
    with pytest.raises(ConfigError) as e:
        get_backbone("efficientnet-b9")
    assert "valid: efficientnet-b0" in str(e.value) and "simple-cnn" in str(e.value)


def test_no_imagenet_weights_for_home_made_nets():
    with pytest.raises(ConfigError, match="simple-cnn has no ImageNet weights"):
        build_classifier(get_backbone("simple-cnn"), 2, 32, ModelConfig(weights="imagenet"))


def test_offline_imagenet_fails_fast_with_a_remedy(monkeypatch):
    import socket
    import time

    from leafnet.errors import LeafnetError

    def no_network(*a, **k):
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-keras-home")
    t0 = time.time()
    with pytest.raises(LeafnetError, match="--weights none"):
        build_classifier(get_backbone("b0"), 2, 32, ModelConfig(weights="imagenet"))
    assert time.time() - t0 < 30
