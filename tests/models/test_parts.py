import ast
import os
import subprocess
import sys
from pathlib import Path

import keras

from leafnet.config import AugmentConfig, ModelConfig
from leafnet.data.augment import build_augmentation
from leafnet.models import parts
from leafnet.models.classifier import build_classifier
from leafnet.models.registry import get_backbone

ROOT = Path(__file__).resolve().parents[2]


def _cnn(augment: AugmentConfig | None, **model):
    keras.utils.clear_session()
    return build_classifier(get_backbone("simple-cnn"), 3, 32, ModelConfig(weights="none", **model), augment, seed=0)


def test_a_classifier_is_input_augmentation_backbone_head_predictions():
    model = _cnn(AugmentConfig(), dense_units=8)
    names = [layer.name for layer in model.layers]
    assert names[0] == parts.INPUT and names[1] == parts.AUGMENTATION == build_augmentation(AugmentConfig()).name
    assert parts.augmentation_of(model) is model.layers[1]
    head = parts.head_layers(model)
    assert [l.name for l in head] == ["head_pool", "head_bn", "head_dense", "head_dropout", "predictions"]
    assert head[0].name == parts.HEAD_POOL and head[-1].name == parts.PREDICTIONS == names[-1]
    backbone = parts.backbone_layers(model)
    assert backbone == model.layers[2:-len(head)]
    assert backbone[0].name.startswith(parts.PREPROCESS_PREFIX)
    assert get_backbone("simple-cnn").block_of(backbone[0].name) == "stem"
    assert not any(parts.is_head(l) for l in backbone) and all(parts.is_head(l) for l in head)


def test_parts_without_augmentation_and_with_an_mlp_head():
    model = _cnn(None, feature_layer="block4_pool", mlp_units="8,4", dropout=0.1)
    assert parts.augmentation_of(model) is None
    assert parts.AUGMENTATION not in [l.name for l in model.layers]
    assert [l.name for l in parts.head_layers(model)] == [
        parts.HEAD_FLATTEN, "head_dropout1", "head_dense1", "head_dropout2", "head_dense2", parts.PREDICTIONS]
    assert parts.backbone_layers(model)[-1].name == "block4_pool"


def test_registry_imports_no_builder():
    tree = ast.parse((ROOT / "leafnet/models/registry.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert {m for m in imported if m.startswith("leafnet")} == {"leafnet.errors", "leafnet.models.parts"}


def test_a_fresh_process_finds_the_backbones_through_the_registry():
    # the package registers them: importing the registry alone is enough
    code = ("from leafnet.models.registry import get_backbone, list_backbones, list_hub_families\n"
            "print(get_backbone('b4').name, len(list_backbones()) > 10, len(list_hub_families()) > 3)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.stdout.split() == ["efficientnet-b4", "True", "True"], out.stderr[-2000:]
