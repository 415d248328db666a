import keras
import numpy as np
import pytest

from leafnet.config import ModelConfig
from leafnet.errors import ConfigError
from leafnet.models.classifier import build_classifier, set_trainable
from leafnet.models.registry import get_backbone


def n_params(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def b0():
    spec = get_backbone("b0")
    return spec, build_classifier(spec, 3, 32, ModelConfig(weights="none"), None, seed=0)


def reference_counts(prefixes, bn_trainable):
    """Trainable weights of the plain keras.applications model's layers with these prefixes."""
    ref = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    total = 0
    for layer in ref.layers:
        if layer.name.startswith(prefixes):
            if isinstance(layer, keras.layers.BatchNormalization) and not bn_trainable:
                continue
            total += n_params(layer.trainable_weights)
    return total


def test_transfer_phase_trains_only_the_head(b0):
    spec, model = b0
    counts = set_trainable(model, spec, "transfer")
    head = n_params(model.get_layer("predictions").weights) + 2 * 1280  # BN gamma/beta
    assert counts["head"] == head
    assert n_params(model.trainable_weights) == head
    assert all(v == 0 for k, v in counts.items() if k != "head")


def test_finetune_one_block_trains_block7_and_top_without_bn(b0):
    spec, model = b0
    counts = set_trainable(model, spec, "finetune", blocks=1)
    assert counts["block7"] == reference_counts(("block7", "top_"), bn_trainable=False)
    assert counts["block6"] == 0 and counts["stem"] == 0
    assert n_params(model.trainable_weights) == counts["block7"] + counts["head"]
    counts = set_trainable(model, spec, "finetune", blocks=2)
    assert counts["block6"] == reference_counts(("block6",), bn_trainable=False)
    counts = set_trainable(model, spec, "finetune", blocks="all")
    assert counts["stem"] == reference_counts(("stem_",), bn_trainable=False)
    assert not any(l.trainable for l in model.layers if isinstance(l, keras.layers.BatchNormalization)
                   and l.name != "head_bn")


def test_from_scratch_transfer_trains_everything(b0):
    spec, model = b0
    set_trainable(model, spec, "transfer", from_scratch=True)
    ref = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    head = n_params(model.get_layer("predictions").weights) + 2 * 1280
    assert n_params(model.trainable_weights) == n_params(ref.trainable_weights) + head


def test_too_many_blocks_refused_with_the_count(b0):
    spec, model = b0
    with pytest.raises(ConfigError, match="efficientnet-b0 has 7 blocks"):
        set_trainable(model, spec, "finetune", blocks=8)


def test_bn_statistics_do_not_move_during_finetuning():
    spec = get_backbone("b0")
    model = build_classifier(spec, 3, 32, ModelConfig(weights="none"), None, seed=0)
    set_trainable(model, spec, "finetune", blocks=2)
    model.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization) and l.name != "head_bn"]
    before = {l.name: [np.array(l.moving_mean), np.array(l.moving_variance)] for l in bns}
    frozen_conv = np.array(model.get_layer("block5a_expand_conv").kernel)
    tuned_conv = np.array(model.get_layer("block7a_expand_conv").kernel)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, 16), 3)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for l in bns:
        np.testing.assert_array_equal(np.array(l.moving_mean), before[l.name][0], err_msg=l.name)
        np.testing.assert_array_equal(np.array(l.moving_variance), before[l.name][1], err_msg=l.name)
    np.testing.assert_array_equal(np.array(model.get_layer("block5a_expand_conv").kernel), frozen_conv)
    assert np.abs(np.array(model.get_layer("block7a_expand_conv").kernel) - tuned_conv).max() > 0


def test_frozen_blocks_drop_nothing_and_unfrozen_blocks_keep_their_dropout(b0):
    spec, model = b0
    drops = {layer.name: layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)
             and not layer.name.startswith("head_")}
    assert drops and all(d.rate > 0 for d in drops.values())       # EfficientNet's stochastic depth
    original = {n: d.rate for n, d in drops.items()}
    set_trainable(model, spec, "transfer")
    assert all(d.rate == 0.0 for d in drops.values())
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    inference = model(x, training=False)
    np.testing.assert_allclose(model(x, training=True), inference, atol=1e-5)  # frozen: training = inference
    set_trainable(model, spec, "finetune", blocks=1)
    for name, d in drops.items():
        assert d.rate == (original[name] if name.startswith("block7") else 0.0), name
    set_trainable(model, spec, "transfer", from_scratch=True)
    assert {n: d.rate for n, d in drops.items()} == original
