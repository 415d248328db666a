"""Frozen-phase feature caching: the cut reproduces the model, a cached transfer phase trains
exactly like an uncached one, augmented copies cycle, and a stale disk cache is never reused.
Also the precision policies and the XLA switch."""

import json

import numpy as np
import pytest

import leafnet
from leafnet.train.features import FeatureCache, caching_plan, split_at_head

NO_AUGMENT = {"augment__flip": "none", "augment__rotation": 0.0, "augment__zoom": 0.0, "augment__translation": 0.0,
              "augment__contrast": 0.0, "augment__brightness": 0.0}


def _model(**model_over):
    from leafnet.config import AugmentConfig, ModelConfig
    from leafnet.models.classifier import build_classifier
    from leafnet.models.registry import get_backbone

    cfg = ModelConfig(weights="none", **model_over)
    return build_classifier(get_backbone("simple-cnn"), 3, 32, cfg, AugmentConfig(), seed=1)


@pytest.mark.parametrize("over", [{}, {"dense_units": 16, "head_batchnorm": True}, {"pooling": "max"}])
def test_backbone_part_then_head_part_is_the_model(over):
    model = _model(**over)
    backbone, head = split_at_head(model)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    f = backbone(x, training=False)
    assert len(f.shape) == 2                                   # pooled: the cache holds vectors
    np.testing.assert_allclose(head(f, training=False), model(x, training=False), atol=1e-6)
    assert {id(w) for w in head.weights} <= {id(w) for w in model.weights}   # shared, not copied


def test_float16_policy_gets_loss_scaling_around_leafnet_optimizers():
    import keras

    from leafnet.train import Ranger
    from leafnet.train.fit import as_config, build_model, resolve_config

    cfg, spec, _ = resolve_config(as_config({"model": {"backbone": "simple-cnn", "weights": "none"},
                                             "data": {"image_size": 32}, "run": {"precision": "mixed_float16"}}))
    model = build_model(cfg, spec, 3)
    assert model.dtype_policy.name == "mixed_float16" and keras.config.dtype_policy().name == "float32"
    model.compile(optimizer=Ranger(), loss="categorical_crossentropy")
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert type(model.optimizer.inner_optimizer).__name__ == "Ranger"


def test_caching_plan():
    plain = _model()
    assert caching_plan("auto", "transfer", False, plain, mixing=False)[0] is (
        not bool(plain.get_layer("augmentation").layers))
    assert caching_plan("on", "transfer", False, plain, mixing=False)[0]
    assert not caching_plan("on", "finetune", False, plain, mixing=False)[0]
    assert not caching_plan("on", "transfer", True, plain, mixing=False)[0]      # random backbone trains
    assert not caching_plan("on", "transfer", False, plain, mixing=True)[0]
    assert not caching_plan("off", "transfer", False, plain, mixing=False)[0]


@pytest.fixture(scope="module")
def pretrained(shared_run):
    return shared_run[1]


@pytest.mark.slow
def test_cached_transfer_phase_trains_like_the_uncached_one(leaves, tmp_path, tiny_config, pretrained):
    runs = {}
    for mode in ("off", "auto"):
        cfg = tiny_config(leaves, tmp_path / mode, model__weights=str(pretrained), data__cache_features=mode,
                          transfer__epochs=4, finetune__epochs=1, **NO_AUGMENT)
        runs[mode] = leafnet.fit(cfg)
    a, b = runs["off"].history, runs["auto"].history
    assert [r["phase"] for r in a] == [r["phase"] for r in b] == ["transfer"] * 4 + ["finetune"]
    for ra, rb in zip(a, b):
        assert float(ra["val_loss"]) == pytest.approx(float(rb["val_loss"]), rel=1e-4, abs=1e-5)
        assert float(ra["loss"]) == pytest.approx(float(rb["loss"]), rel=1e-4, abs=1e-5)
    assert runs["auto"].metrics["val_accuracy"] == runs["off"].metrics["val_accuracy"]


def test_augmented_copies_cycle_and_disk_cache_is_keyed_by_weights(leaves, tmp_path, monkeypatch):
    import leafnet.train.features as features
    from leafnet.data.pipeline import ImageSet
    from leafnet.data.scan import scan_folder

    scan = scan_folder(leaves, progress=False)
    images = ImageSet(scan.files[:24], scan.labels[:24], len(scan.classes), 32)
    images.cache("memory")
    from leafnet.config import AugmentConfig, ModelConfig
    from leafnet.models.classifier import build_classifier
    from leafnet.models.registry import get_backbone

    model = build_classifier(get_backbone("simple-cnn"), len(scan.classes), 32, ModelConfig(weights="none"),
                             AugmentConfig(flip="horizontal_and_vertical", rotation=0.5), seed=1)
    monkeypatch.setattr(features, "MEMORY_LIMIT", 0)              # force the disk cache
    c = FeatureCache(model, images, copies=2, augment=True, seed=3, cache_dir=tmp_path, label="t")
    assert c.path.is_file() and c.features.shape[:2] == (2, 24)
    assert not np.allclose(c.features[0], c.features[1])          # two different augmented copies
    assert c.dataset(8, epoch=0).options().autotune.enabled is False     # as every leafnet pipeline
    e0 = np.concatenate([f.numpy() for f, _ in c.dataset(8, epoch=0)])
    e3 = np.concatenate([f.numpy() for f, _ in c.dataset(8, epoch=3)])
    np.testing.assert_array_equal(e0, c.features[0])
    np.testing.assert_array_equal(e3, c.features[1])
    mtime = c.path.stat().st_mtime_ns
    again = FeatureCache(model, images, copies=2, augment=True, seed=3, cache_dir=tmp_path, label="t")
    assert again.path == c.path and c.path.stat().st_mtime_ns == mtime   # reused, not recomputed
    np.testing.assert_array_equal(again.features, c.features)
    w = model.get_layer("block1_conv").kernel
    w.assign(w.numpy() * 0.5)
    changed = FeatureCache(model, images, copies=2, augment=True, seed=3, cache_dir=tmp_path, label="t")
    assert changed.path != c.path                                   # other weights: another cache
    assert not np.allclose(changed.features, c.features)


@pytest.mark.slow
@pytest.mark.parametrize("precision, optimizer", [("mixed_bfloat16", "adam"), ("mixed_float16", "ranger")])
def test_mixed_precision_trains_and_reloads(precision, optimizer, leaves, tmp_path, tiny_config):
    cfg = tiny_config(leaves, tmp_path / precision, run__precision=precision, transfer__optimizer=optimizer,
                      finetune__optimizer=optimizer, transfer__epochs=2, finetune__epochs=1)
    run = leafnet.fit(cfg)
    model = run.load_model()
    compute = {layer.dtype_policy.compute_dtype for layer in model.layers if layer.weights}
    assert compute == {precision.split("_")[1]} | {"float32"}        # the output layer stays float32
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    assert np.isfinite(run.metrics["val_loss"])
    assert json.loads((tmp_path / precision / "metrics.json").read_text())["epochs"] == 3


def test_features_does_not_import_the_trainer():
    """No import cycle: the feature cache takes its seeds from leafnet.train.seeding."""
    import subprocess
    import sys

    code = "import sys, leafnet.train.features; print('leafnet.train.trainer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "False"
