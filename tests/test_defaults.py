"""A default yields to what the user chose; only two explicit, contradicting choices are an error."""

from __future__ import annotations

import pytest
import yaml

import leafnet
from leafnet.config import FINETUNE_PLATEAU_PATIENCE, PhaseConfig, load_config, resolve_defaults

CYCLICAL = ("triangular", "triangular2", "exp_range")
SCHEDULES = PhaseConfig.__dataclass_fields__["schedule"].metadata["choices"]


@pytest.mark.parametrize("schedule", [s for s in SCHEDULES if s != "constant"])
def test_a_schedule_turns_the_default_plateau_off(schedule):
    # fit, search and cv all build their config with load_config; it refused every schedule before
    flags = {"transfer.schedule": schedule, "finetune.schedule": schedule}
    if schedule in CYCLICAL:
        flags |= {"transfer.lr": 1e-4, "transfer.max_lr": 1e-3, "finetune.lr": 1e-5, "finetune.max_lr": 1e-4}
    cfg = load_config(None, flags=flags)
    notes = resolve_defaults(cfg, has_imagenet=True)
    assert cfg.finetune.reduce_lr_patience == 0 and cfg.transfer.reduce_lr_patience == 0
    assert notes == [f"finetune.schedule={schedule} sets the learning rate, so the plateau reduction "
                     "(finetune.reduce_lr_patience) is off"]


def test_the_plateau_default_stays_with_a_constant_schedule():
    cfg = load_config(None)
    assert resolve_defaults(cfg, has_imagenet=True) == []
    assert cfg.finetune.reduce_lr_patience == FINETUNE_PLATEAU_PATIENCE == 2
    assert cfg.transfer.reduce_lr_patience == 0


def test_two_explicit_contradicting_choices_are_refused():
    with pytest.raises(leafnet.LeafnetError, match="finetune.reduce_lr_patience works with schedule constant only"):
        load_config(None, flags={"finetune.schedule": "cosine", "finetune.reduce_lr_patience": 3})


@pytest.mark.parametrize("backbone, expected, note", [
    ("simple-cnn", "none", "simple-cnn has no pretrained weights: training from scratch (--weights none)"),
    ("alexnet", "none", "alexnet has no pretrained weights: training from scratch (--weights none)"),
    ("efficientnet-b0", "imagenet", None),
])
def test_weights_default_to_what_the_backbone_has(backbone, expected, note):
    cfg = load_config(None, flags={"model.backbone": backbone})
    notes = resolve_defaults(cfg, has_imagenet=leafnet.get_backbone(backbone).imagenet)
    assert cfg.model.weights == expected
    assert notes == ([note] if note else [])


def test_explicit_imagenet_on_a_backbone_without_it_is_refused(leaves, tmp_path, run_cli):
    code, _, err = run_cli("fit", "--data", leaves, "--backbone", "simple-cnn", "--weights", "imagenet",
                           "--run-dir", tmp_path / "run")
    assert code == 2 and "simple-cnn has no ImageNet weights" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_readme_recipe_runs_and_says_the_plateau_is_off_once(leaves, tmp_path, run_cli):
    code, out, err = run_cli(
        "fit", "--data", leaves, "--backbone", "simple-cnn", "--finetune-blocks", "2", "--image-size", "32",
        "--epochs", "1", "--finetune-epochs", "2", "--optimizer", "ranger", "--loss", "focal",
        "--label-smoothing", "0.1", "--schedule", "triangular2", "--lr", "1e-4", "--max-lr", "1e-3",
        "--finetune-max-lr", "1e-4", "--set", "finetune.lr=1e-5", "--run-dir", tmp_path / "run")
    assert code == 0, err
    assert out.count("the plateau reduction (finetune.reduce_lr_patience) is off") == 1
    assert out.count("simple-cnn has no pretrained weights") == 1
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["finetune"]["reduce_lr_patience"] == 0 and stored["model"]["weights"] == "none"
    # the resolved config.yaml reproduces the run as it is
    assert load_config(tmp_path / "run" / "config.yaml").finetune.reduce_lr_patience == 0


@pytest.mark.slow
def test_pretext_starts_from_scratch_by_default(leaves, tmp_path, run_cli):
    code, out, err = run_cli("pretext", "--task", "rotation", "--data", leaves, "--backbone", "simple-cnn",
                             "--image-size", "32", "--epochs", "1", "--finetune-epochs", "0", "--quiet",
                             "--run-dir", tmp_path / "rot")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "rot" / "config.yaml").read_text())["model"]["weights"] == "none"
