"""``leafnet pretext`` end to end: the run folder, backbone.keras, and transfer from it."""

import json
import shutil

import numpy as np
import pytest

from leafnet.models.registry import get_backbone

TINY = ["--backbone", "simple-cnn", "--weights", "none", "--image-size", "32", "--batch-size", "16",
        "--epochs", "2", "--lr", "3e-3", "--finetune-epochs", "1", "--finetune-blocks", "1", "--seed", "5",
        "--set", "transfer.early_stopping=0", "--quiet"]


@pytest.fixture(scope="module")
def flat(leaves, tmp_path_factory):
    """The test leaves copied into one flat folder: no class sub-folders."""
    out = tmp_path_factory.mktemp("flat") / "images"
    out.mkdir()
    for f in sorted(leaves.rglob("*.png")):
        shutil.copyfile(f, out / f"{f.parent.name}-{f.name}")
    return out


@pytest.fixture(scope="module")
def perturbation_run(flat, tmp_path_factory):
    from leafnet.cli import main

    run_dir = tmp_path_factory.mktemp("pretext") / "perturbation"
    code = main(["pretext", "--task", "perturbation", "--data", str(flat), "--run-dir", str(run_dir), *TINY])
    assert code == 0
    return run_dir


def backbone_arrays(model, spec_name="simple-cnn"):
    from leafnet.models.classifier import backbone_layers

    return {l.name: [np.array(w) for w in l.get_weights()]
            for l in backbone_layers(model, get_backbone(spec_name)) if l.weights}


def test_pretext_run_folder_on_a_flat_folder(perturbation_run, flat):
    from leafnet.runs import Run

    run = Run(perturbation_run)
    for name in ("config.yaml", "classes.json", "split.csv", "history.csv", "model.keras", "best.keras",
                 "metrics.json", "backbone.keras", "pretext.json", "plots/curves.png"):
        assert (perturbation_run / name).exists(), name
    assert run.classes == ["black", "white"]
    info = json.loads((perturbation_run / "pretext.json").read_text())
    assert (info["task"], info["backbone"], info["image_size"]) == ("perturbation", "simple-cnn", 32)
    assert [r["phase"] for r in run.history] == ["transfer", "transfer", "finetune"]
    m = run.metrics
    n_images = sum(1 for _ in flat.iterdir())
    assert m["train_images"] + m["val_images"] == 2 * n_images  # two copies of every image
    assert m["val_accuracy"] > 0.7  # black vs white squares are learnt in a few hundred steps


def test_backbone_keras_round_trip(perturbation_run):
    import keras

    from leafnet.models.weights import extract_backbone, load_backbone_file, read_backbone_info
    from leafnet.runs import Run

    info = read_backbone_info(perturbation_run / "backbone.keras")
    assert (info["backbone"], info["image_size"], info["pretext_task"]) == ("simple-cnn", 32, "perturbation")
    backbone, info2 = load_backbone_file(perturbation_run)  # a run folder resolves to its backbone.keras
    assert info2 == info
    assert backbone.inputs[0].name == "image" and tuple(backbone.inputs[0].shape) == (None, 32, 32, 3)
    assert not any(l.name.startswith(("head_", "predictions", "augmentation")) for l in backbone.layers)
    classifier = Run(perturbation_run).load_model()
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    reference = extract_backbone(classifier, get_backbone("simple-cnn"), 32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(backbone(x)), keras.ops.convert_to_numpy(reference(x)))
    assert backbone.output.shape[-1] == 256


def test_rerun_is_complete_and_another_task_is_refused(perturbation_run, flat, run_cli):
    code, out, _ = run_cli("pretext", "--task", "perturbation", "--data", flat, "--run-dir", perturbation_run,
                           *[a for a in TINY if a != "--quiet"])
    assert code == 0 and "already complete" in out
    code, _, err = run_cli("pretext", "--task", "rotation", "--data", flat, "--run-dir", perturbation_run, *TINY)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "holds a different run" in err or "holds a perturbation pretext run" in err


def test_frozen_transfer_keeps_the_pretext_weights_bit_identical(perturbation_run, leaves, tmp_path, tiny_config):
    import keras

    import leafnet

    source = keras.saving.load_model(perturbation_run / "backbone.keras")
    want = {l.name: [np.array(w) for w in l.get_weights()] for l in source.layers if l.weights}
    cfg = tiny_config(leaves, tmp_path / "run", model__weights=str(perturbation_run),
                      transfer__epochs=2, transfer__lr=1e-2, finetune__epochs=0)
    run = leafnet.fit(cfg)
    got = backbone_arrays(run.load_model())
    assert set(got) == set(want) and len(got) == 10
    for name, arrays in want.items():
        for a, b in zip(arrays, got[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)  # kernels and BN moving statistics alike
    assert float(run.history[-1]["loss"]) < float(run.history[0]["loss"])  # the head did train


def test_rotation_from_python_ignores_labels_and_turns_flips_off(leaves, tmp_path, tiny_config):
    import yaml

    from leafnet.pretext import pretext

    cfg = tiny_config(leaves, tmp_path / "rot", transfer__epochs=1, finetune__epochs=0)
    run = pretext(cfg, task="rotation")
    assert run.classes == ["rot0", "rot90", "rot180", "rot270"]
    stored = yaml.safe_load((run.root / "config.yaml").read_text())
    assert stored["augment"]["flip"] == "none"
    rows = run.root.joinpath("split.csv").read_text().splitlines()[1:]
    assert len(rows) == 120 and all(",image," in r for r in rows)  # 4 species x 30, one class
    assert run.metrics["train_images"] == 4 * sum(1 for r in rows if ",train," in r)


def test_weights_from_another_backbone_name_the_layer_and_the_backbone(perturbation_run):
    import keras

    from leafnet.config import ModelConfig
    from leafnet.errors import LeafnetError
    from leafnet.models.classifier import build_classifier
    from leafnet.models.weights import load_backbone_weights

    spec = get_backbone("alexnet")
    model = build_classifier(spec, 3, 32, ModelConfig(weights="none"))
    before = [np.array(w) for w in model.weights]
    with pytest.raises(LeafnetError, match=r"no layer 'conv1_conv'.*the file holds a simple-cnn backbone"):
        load_backbone_weights(model, spec, perturbation_run / "backbone.keras")
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))
