"""The training recipe as leafnet wires it: names, schedules in epochs, oversampling,
label mixing, gradual unfreezing, discriminative lrs, lr-find, and fits that use them."""

import collections
import csv

import numpy as np
import pytest
import tensorflow as tf

import leafnet
from leafnet.config import PhaseConfig, config_from_dict
from leafnet.data.augment import mix_batches
from leafnet.data.pipeline import balanced_order
from leafnet.train.lr_find import smooth, suggest
from leafnet.train.losses import make_loss
from leafnet.train.optimizers.factory import make_optimizer, make_schedule


def test_tfa_names_are_accepted_as_aliases():
    cfg = config_from_dict({"transfer": {"optimizer": "RectifiedAdam", "loss": "SigmoidFocalCrossEntropy",
                                         "schedule": "Triangular2CyclicalLearningRate", "max_lr": 0.1}})
    assert (cfg.transfer.optimizer, cfg.transfer.loss, cfg.transfer.schedule) == ("radam", "sigmoid_focal", "triangular2")


def test_objects_by_name():
    from leafnet.train import Lookahead, RAdam, Ranger, SigmoidFocalCrossEntropy

    assert isinstance(make_optimizer(PhaseConfig(optimizer="radam")), RAdam)
    assert isinstance(make_optimizer(PhaseConfig(optimizer="ranger")), Ranger)
    la = make_optimizer(PhaseConfig(optimizer="sgd", lookahead=True, sync_period=4))
    assert isinstance(la, Lookahead) and la.sync_period == 4
    assert isinstance(make_loss(PhaseConfig(loss="sigmoid_focal")), SigmoidFocalCrossEntropy)
    focal = make_loss(PhaseConfig(loss="focal", focal_gamma=0.0, focal_alpha=None))
    y, p = np.eye(3)[[0, 2]], np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    # gamma 0, no alpha: plain categorical cross-entropy
    assert float(focal(y, p)) == pytest.approx(-np.mean(np.log([0.7, 0.6])), rel=1e-5)


def test_schedule_lengths_given_in_epochs_become_steps():
    cfg = PhaseConfig(lr=1e-3, max_lr=1e-2, schedule="triangular", step_size=2, step_unit="epochs", epochs=8)
    s = make_schedule(cfg, steps_per_epoch=10)
    assert s.step_size == 20
    assert float(s(0)) == pytest.approx(1e-3) and float(s(20)) == pytest.approx(1e-2) and float(s(40)) == pytest.approx(1e-3)
    cfg = PhaseConfig(lr=1e-3, schedule="cosine", warmup=1, epochs=5)
    s = make_schedule(cfg, steps_per_epoch=10)
    assert float(s(0)) == pytest.approx(0.0) and float(s(10)) == pytest.approx(1e-3, rel=1e-5)
    assert float(s(50)) == pytest.approx(cfg.min_lr, rel=1e-3)   # decays to min_lr
    assert make_schedule(PhaseConfig(lr=0.5), 10) == 0.5


@pytest.mark.parametrize("bad, fragment", [
    ({"schedule": "triangular"}, "set transfer.max_lr"),
    ({"schedule": "triangular", "max_lr": 1e-4, "lr": 1e-3}, "transfer.max_lr must be >"),
    ({"schedule": "cosine", "reduce_lr_patience": 2}, "works with schedule constant only"),
    ({"lr_decay": 0.5}, "fine-tune settings"),
])
def test_inconsistent_recipes_are_refused(bad, fragment):
    with pytest.raises(leafnet.LeafnetError, match=fragment):
        config_from_dict({"transfer": bad})


def test_oversampling_draws_every_class_equally():
    labels = np.array([0] * 30 + [1] * 5 + [2] * 10)
    order = balanced_order(labels, seed=0, epoch=3)
    assert collections.Counter(labels[order]) == {0: 30, 1: 30, 2: 30}
    assert set(np.flatnonzero(labels == 1)) <= set(order)        # every image still appears
    assert (order == balanced_order(labels, 0, 3)).all() and not (order == balanced_order(labels, 0, 4)).all()


def _batches(n=4):
    x = np.stack([np.full((8, 8, 3), 255.0 * (i % 2), np.float32) for i in range(n)])
    y = np.eye(2, dtype=np.float32)[[i % 2 for i in range(n)]]
    return tf.data.Dataset.from_tensors((x, y))


@pytest.mark.parametrize("kind", ["mixup", "cutmix", "both"])
def test_label_mixing_gives_soft_labels_that_match_the_pixels(kind):
    kw = {"mixup": 0.4 if kind != "cutmix" else 0.0, "cutmix": 1.0 if kind != "mixup" else 0.0}
    x, y = next(iter(mix_batches(_batches(), seed=3, **kw)))
    x, y = x.numpy(), y.numpy()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert ((y > 0.01) & (y < 0.99)).any()
    # Class 1 images are white: the share of class 1 in a label equals the image's mean brightness.
    np.testing.assert_allclose(y[:, 1], x.mean(axis=(1, 2, 3)) / 255.0, atol=0.02)
    again = next(iter(mix_batches(_batches(), seed=3, **kw)))[1].numpy()
    np.testing.assert_array_equal(y, again)


def test_discriminative_multipliers_follow_the_blocks():
    from leafnet.config import ModelConfig
    from leafnet.models.classifier import block_lr_multipliers, build_classifier
    from leafnet.models.registry import get_backbone

    spec = get_backbone("simple-cnn")
    model = build_classifier(spec, 3, 32, ModelConfig(weights="none"))
    m = block_lr_multipliers(model, spec, 0.5)
    assert m[model.get_layer("block5_conv").kernel.path] == 1.0
    assert m[model.get_layer("block4_conv").kernel.path] == 0.5
    assert m[model.get_layer("block1_bn").gamma.path] == 0.5 ** 4
    assert model.get_layer("predictions").kernel.path not in m


def test_gradual_unfreezing_stages():
    from leafnet.models.registry import get_backbone
    from leafnet.train.trainer import Phase, Trainer

    cfg = config_from_dict({"finetune": {"blocks": 3, "unfreeze_every": 2, "epochs": 8}})
    t = Trainer(cfg, None, get_backbone("simple-cnn"), None, None, None)
    assert [t._stage_blocks(Phase("finetune", cfg.finetune), k) for k in range(8)] == [1, 1, 2, 2, 3, 3, 3, 3]


def test_lr_find_suggestion_sits_on_the_descent():
    lrs = np.logspace(-6, 0, 100)
    x = np.log10(lrs)
    loss = 2.0 - 1.5 / (1 + np.exp(-(x + 3) * 3)) + np.where(x > -1, (x + 1) ** 2 * 8, 0)
    loss = loss + np.random.default_rng(0).normal(0, 0.02, 100)
    valley, min10 = suggest(list(lrs), smooth(list(loss)))
    assert 1e-4 < valley < 1e-2
    assert min10 < lrs[np.argmin(loss)]


@pytest.mark.slow
def test_lr_find_writes_its_plot_and_values(leaves, tmp_path, tiny_config):
    from leafnet.train.lr_find import lr_find

    r = lr_find(tiny_config(leaves, tmp_path / "unused"), steps=40, out=tmp_path / "lrf")
    assert (tmp_path / "lrf" / "lr_find.png").stat().st_size > 10_000
    with open(tmp_path / "lrf" / "lr_find.csv") as f:
        rows = list(csv.DictReader(f))
    assert 10 <= len(rows) <= 40 and float(rows[1]["lr"]) > float(rows[0]["lr"])
    assert r.lrs[0] <= r.suggested_lr <= r.lrs[-1]


@pytest.mark.slow
@pytest.mark.parametrize("phase, flag", [("transfer", "--lr"), ("finetune", "--finetune-lr")])
def test_lr_find_cli_prints_the_suggestion_with_its_flag(phase, flag, leaves, tmp_path, run_cli, monkeypatch):
    import re

    import leafnet.train.lr_find as module

    returned = []
    original = module.lr_find
    monkeypatch.setattr(module, "lr_find", lambda *a, **k: returned.append(original(*a, **k)) or returned[-1])
    code, out, err = run_cli("lr-find", "--data", leaves, "--backbone", "simple-cnn", "--weights", "none",
                             "--image-size", "32", "--batch-size", "16", "--steps", "12", "--phase", phase,
                             "--out", tmp_path / "lrf", "--quiet")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("suggested lr: ")]
    assert len(lines) == 1, out
    m = re.fullmatch(r"suggested lr: (\S+)  \(apply it: (--[a-z-]+) (\S+)\)", lines[0])
    assert m, lines[0]
    shown = f"{returned[0].suggested_lr:.1e}"
    assert m.group(1) == m.group(3) == shown and m.group(2) == flag
    assert float(shown) == pytest.approx(returned[0].suggested_lr, rel=0.05)


@pytest.mark.slow
def test_ranger_triangular2_focal_fit_learns(leaves, tmp_path, tiny_config):
    cfg = tiny_config(leaves, tmp_path / "r", transfer__epochs=10, finetune__epochs=2)
    cfg["transfer"].update(optimizer="ranger", schedule="triangular2", lr=1e-3, max_lr=1e-2, step_size=2,
                           loss="focal")
    cfg["finetune"].update(optimizer="ranger", loss="focal")
    run = leafnet.fit(cfg)
    assert run.metrics["val_accuracy"] >= 0.5   # 4 classes: chance 0.25
    lrs = [float(r["lr"]) for r in run.history if r["phase"] == "transfer"]
    assert len(set(np.round(lrs, 8))) > 2        # the schedule moves the lr, and history shows it
    model = run.load_model()
    assert type(model.optimizer).__name__ == "Ranger"


@pytest.mark.slow
def test_oversample_mixup_gradual_unfreezing_fit(leaves, tmp_path, tiny_config):
    cfg = tiny_config(leaves, tmp_path / "g", transfer__epochs=2, finetune__epochs=4)
    cfg["data"]["balance"] = "oversample"
    cfg["augment"] = {"mixup": 0.2, "cutmix": 1.0, "mix_off_epochs": 1, "randaugment": 2}
    cfg["finetune"].update(blocks=3, unfreeze_every=2, lr_decay=0.5, use_ema=True, ema_momentum=0.9)
    run = leafnet.fit(cfg)
    assert [int(r["epoch"]) for r in run.history] == [1, 2, 3, 4, 5, 6]
    assert np.isfinite(run.metrics["val_loss"])


def test_keras_fit_runs_each_segment_of_epochs_in_one_call(leaves, tmp_path, tiny_config, monkeypatch):
    """One ``fit`` call per segment (the epochs with the same unfrozen blocks and the same
    mixing), and the reseeding between its epochs never sets TensorFlow's global seed
    (``tf.random.set_seed`` clears TensorFlow's kernel cache: a retrace-like cost per epoch)."""
    import keras

    calls, inside, seeds_in_fit = [], [False], []
    fit, set_seed = keras.Model.fit, tf.random.set_seed

    def spy_fit(self, *args, **kwargs):
        calls.append((kwargs.get("initial_epoch", 0), kwargs.get("epochs")))
        inside[0] = True
        try:
            return fit(self, *args, **kwargs)
        finally:
            inside[0] = False

    def spy_set_seed(seed):
        seeds_in_fit.append(inside[0])
        set_seed(seed)

    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    monkeypatch.setattr(tf.random, "set_seed", spy_set_seed)
    cfg = tiny_config(leaves, tmp_path / "s", transfer__epochs=3, finetune__epochs=4)
    cfg["augment"] = {"mixup": 0.2, "mix_off_epochs": 1}
    cfg["finetune"].update(blocks=2, unfreeze_every=2)
    run = leafnet.fit(cfg)
    assert [int(r["epoch"]) for r in run.history] == list(range(1, 8))
    # transfer: 2 mixed epochs, 1 unmixed; fine-tune: 1 block for 2 epochs, then 2 blocks mixed, then unmixed
    assert calls == [(0, 2), (2, 3), (3, 5), (5, 6), (6, 7)]
    assert seeds_in_fit and not any(seeds_in_fit)     # set once, before training, never inside fit
