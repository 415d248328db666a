"""Multi-worker training (MultiWorkerMirroredStrategy) on leafnet's own steps.

- The steps against ``model.fit`` in one process (default strategy): the same epoch logs
  and weights, class weights and label smoothing included.
- Two worker processes on loopback (TF_CONFIG): worker 1 is killed with SIGKILL after
  the second epoch, the chief stops with one clear line, the same commands resume, and
  the result is the run a single process trains with the global batch (the cluster's
  BatchNormalization synchronised, no random layers, so both see the same arithmetic).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from leafnet.errors import LeafnetError

BASE = ["--image-size", "32", "--backbone", "simple-cnn", "--weights", "none", "--epochs", "3",
        "--finetune-epochs", "1", "--finetune-blocks", "2", "--seed", "7", "--sync-batchnorm", "true",
        "--set", "model.dropout=0", "--set", "augment.flip=none", "--set", "augment.rotation=0",
        "--set", "augment.zoom=0", "--set", "augment.translation=0", "--set", "transfer.early_stopping=0",
        "--set", "finetune.early_stopping=0"]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _launch(data: Path, run_dir: Path, tmp: Path, tag: str) -> list[tuple[subprocess.Popen, Path]]:
    ports = _free_ports(2)
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
        log = tmp / f"{tag}-worker{i}.log"
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(tmp)}
        cmd = [sys.executable, "-m", "leafnet", "fit", "--data", str(data), "--batch-size", "16", "--lr", "3e-3",
               "--finetune-lr", "3e-4", "--run-dir", str(run_dir), "--distribute", "multiworker", *BASE]
        procs.append((subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env), log))
    return procs


def _wait(procs, timeout: float = 300) -> list[int]:
    deadline = time.time() + timeout
    codes = []
    for p, log in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, deadline - time.time())))
        except subprocess.TimeoutExpired:
            for q, _ in procs:
                q.kill()
            pytest.fail(f"the cluster did not finish in {timeout} s; {log}:\n{log.read_text()[-3000:]}")
    return codes


def _epochs_done(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "backup" / "state.json").read_text())["epochs"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_two_workers_killed_and_resumed_train_as_one_device(leaves, tmp_path):
    import keras

    import leafnet
    from leafnet.runs import read_csv

    run_dir, scratch = tmp_path / "cluster", tmp_path / "tmp"
    scratch.mkdir()
    procs = _launch(leaves, run_dir, scratch, "first")
    deadline = time.time() + 240
    while _epochs_done(run_dir) < 2:
        assert all(p.poll() is None for p, _ in procs), procs[0][1].read_text()[-3000:]
        assert time.time() < deadline, "no epoch finished in 240 s"
        time.sleep(0.05)
    procs[1][0].send_signal(signal.SIGKILL)
    codes = _wait(procs, timeout=120)
    chief_log = procs[0][1].read_text()
    assert codes[1] == -signal.SIGKILL
    assert codes[0] != 0 and "the cluster stopped: another worker is gone" in chief_log, chief_log[-3000:]
    assert "Traceback" not in chief_log
    killed_after = _epochs_done(run_dir)
    assert 2 <= killed_after < 4 and not (run_dir / "metrics.json").exists()

    procs = _launch(leaves, run_dir, scratch, "second")
    assert _wait(procs) == [0, 0], procs[0][1].read_text()[-3000:] + procs[1][1].read_text()[-3000:]
    chief_log, worker_log = (log.read_text() for _, log in procs)
    assert f"resuming {run_dir.resolve()} after epoch {killed_after}" in chief_log
    assert "worker 1: done; the run folder is the chief's" in worker_log
    assert "all 2 replicas hold the same weights" in chief_log     # bit-identical on both workers
    assert not list(scratch.glob("leafnet-worker-*")), "the worker's scratch folder was left behind"

    cluster = read_csv(run_dir / "history.csv")
    assert [int(r["epoch"]) for r in cluster] == [1, 2, 3, 4]       # every epoch once
    assert float(cluster[0]["lr"]) == pytest.approx(6e-3)           # 2 replicas: lr x2
    assert float(cluster[-1]["loss"]) < float(cluster[0]["loss"])   # it learns

    # One process, the global batch (2 x 16) and the scaled learning rates.
    single = leafnet.fit(str_config(leaves, tmp_path / "single"))
    reference = read_csv(tmp_path / "single" / "history.csv")
    for a, b in zip(cluster, reference):
        for key in ("loss", "val_loss", "accuracy"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=2e-3, abs=2e-3), (a, b)
    m_cluster = keras.saving.load_model(run_dir / "model.keras")
    m_single = single.load_model()
    assert [layer.synchronized for layer in m_cluster.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # Float sums in another order; Adam turns a sign flip of a near-zero gradient into a
    # full step (lr 6e-3), and synchronised BatchNormalization computes the variance as
    # E[x^2] - E[x]^2: single weights may sit a few such steps apart (how many depends on
    # the CPU's kernels), each tensor as a whole agrees closely.
    step = 6e-3
    for w1, w2 in zip(m_cluster.weights, m_single.weights):
        a, b = np.asarray(w1), np.asarray(w2)
        np.testing.assert_allclose(a, b, atol=4 * step, rtol=5e-2)
        assert np.linalg.norm(a - b) <= 1e-2 * max(np.linalg.norm(b), 1.0), w1.path
    images = np.stack([keras.utils.img_to_array(keras.utils.load_img(p, target_size=(32, 32)))
                       for p in sorted(leaves.rglob("*.png"))[::7]])
    np.testing.assert_allclose(m_cluster.predict(images, verbose=0), m_single.predict(images, verbose=0), atol=2e-2)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val_accuracy"] == pytest.approx(single.metrics["val_accuracy"], abs=0.051)


def str_config(data: Path, run_dir: Path) -> dict:
    from leafnet.cli import build_parser, train_flags

    args = build_parser().parse_args(["fit", "--data", str(data), "--batch-size", "32", "--lr", "6e-3",
                                      "--finetune-lr", "6e-4", "--run-dir", str(run_dir), "--quiet", *BASE])
    from leafnet.config import load_config

    return load_config(args.config, flags=train_flags(args), overrides=args.overrides)


# ------------------------------------------------------------------------------- in one process

def test_steps_match_model_fit(tmp_path):
    """One epoch of leafnet's distributed steps (default strategy) equals ``model.fit``:
    loss, weighted accuracy, weights; class weights and label smoothing on."""
    import keras
    import tensorflow as tf

    from leafnet.train.steps import DistributedSteps

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8, 8, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 40)]
    class_weight = {0: 0.5, 1: 2.0, 2: 1.0}

    def build():
        keras.utils.set_random_seed(3)
        inp = keras.Input((8, 8, 3))
        h = keras.layers.Conv2D(4, 3, use_bias=False)(inp)   # a bias before BN has no gradient: noise
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.GlobalAveragePooling2D()(h)
        model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss,
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        return model, loss

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)      # 16, 16, 8: a partial last batch
    a, _ = build()
    fit_logs = {k: v[-1] for k, v in a.fit(ds, epochs=1, verbose=0, shuffle=False, class_weight=class_weight)
                .history.items()}
    b, loss = build()
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    steps = DistributedSteps(tf.distribute.get_strategy())
    logs = steps.train_epoch(b, loss, ds, class_weight=class_weight, callbacks=[Record()])
    assert seen == [0, 1, 2]
    assert logs["loss"] == pytest.approx(fit_logs["loss"], rel=1e-5)
    assert logs["accuracy"] == pytest.approx(fit_logs["accuracy"], rel=1e-6)
    for w1, w2 in zip(a.weights, b.weights):
        np.testing.assert_allclose(np.asarray(w1), np.asarray(w2), atol=1e-5)
    ev = steps.evaluate(b, loss, ds)
    keras_ev = b.evaluate(ds, verbose=0, return_dict=True)
    assert ev["loss"] == pytest.approx(keras_ev["loss"], rel=1e-5)
    assert ev["accuracy"] == pytest.approx(keras_ev["accuracy"], rel=1e-6)


def test_broadcast_under_the_default_strategy():
    import tensorflow as tf

    from leafnet.train.steps import agree, broadcast_arrays, broadcast_json

    s = tf.distribute.get_strategy()
    a = [np.arange(6, dtype="float32").reshape(2, 3) / 7, np.array([2 ** 40 + 1], dtype="int64"),
         np.array([4294967295], dtype="uint32")]
    out = broadcast_arrays(s, a, is_chief=True)
    for x, y in zip(a, out):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    state = {"epochs": 3, "best": 0.123456789, "weights": "epoch-00003.npz", "é": None}
    assert broadcast_json(s, state, is_chief=True) == state
    assert agree(s, True) == 1 and agree(s, False) == 0


def test_multiworker_refusals(monkeypatch, tmp_path, leaves):
    from leafnet.train.distribute import make_strategy
    from leafnet.train.fit import fit

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(LeafnetError, match="needs TF_CONFIG"):
        make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(LeafnetError, match="TF_CONFIG is not valid JSON"):
        make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {}, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(LeafnetError, match="lists no workers"):
        make_strategy("multiworker")
    cfg = {"data": {"data": str(leaves), "image_size": 32}, "model": {"backbone": "simple-cnn", "weights": "none"},
           "run": {"distribute": "multiworker", "verbose": 0}}
    with pytest.raises(LeafnetError, match="needs --run-dir"):
        fit(cfg)


def test_other_commands_refuse_multiworker(tmp_path, leaves):
    import leafnet
    from leafnet.train.lr_find import lr_find

    cfg = {"data": {"data": str(leaves), "image_size": 32}, "model": {"backbone": "simple-cnn", "weights": "none"},
           "run": {"distribute": "multiworker", "verbose": 0, "dir": str(tmp_path / "x")}}
    with pytest.raises(LeafnetError, match="`leafnet search` runs on one machine .*--distributed chief"):
        leafnet.search(cfg, max_trials=1)
    with pytest.raises(LeafnetError, match="`leafnet cv` runs on one machine"):
        leafnet.cross_validate(cfg, folds=2)
    with pytest.raises(LeafnetError, match="`leafnet lr-find` runs on one machine"):
        lr_find(cfg)
    assert not (tmp_path / "x").exists()


def test_steps_match_model_fit_in_mixed_float16():
    """Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer: the steps scale
    the loss the same way and end where ``model.fit`` ends."""
    import keras
    import tensorflow as tf

    from leafnet.train.steps import DistributedSteps

    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 8, 8, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 32)]
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        def build():
            keras.utils.set_random_seed(5)
            inp = keras.Input((8, 8, 3))
            h = keras.layers.Conv2D(4, 3, use_bias=False)(inp)
            h = keras.layers.GlobalAveragePooling2D()(h)
            out = keras.layers.Dense(3, activation="softmax", dtype="float32")(h)
            model = keras.Model(inp, out)
            model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.CategoricalCrossentropy(),
                          metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
            return model

        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        a = build()
        assert isinstance(a.optimizer, keras.optimizers.LossScaleOptimizer)
        fit_loss = a.fit(ds, epochs=1, verbose=0, shuffle=False).history["loss"][-1]
        b = build()
        logs = DistributedSteps(tf.distribute.get_strategy()).train_epoch(b, keras.losses.CategoricalCrossentropy(), ds)
    finally:
        keras.config.set_dtype_policy(previous)
    assert logs["loss"] == pytest.approx(fit_loss, rel=1e-3)
    for w1, w2 in zip(a.trainable_weights, b.trainable_weights):
        np.testing.assert_allclose(np.asarray(w1, dtype="float32"), np.asarray(w2, dtype="float32"), atol=1e-3)
    assert int(b.optimizer.iterations) == 2


@pytest.mark.parametrize("which", ["ranger+ema", "layerwise"])
def test_steps_match_model_fit_with_leafnet_optimizers(which):
    """Ranger with EMA (weights replaced by their average as the epoch ends) and LayerwiseLR
    behave under the steps as under ``model.fit``."""
    import keras
    import tensorflow as tf

    from leafnet.train.optimizers import LayerwiseLR, Ranger
    from leafnet.train.steps import DistributedSteps

    rng = np.random.default_rng(2)
    x = rng.normal(size=(48, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 48)]

    def build():
        keras.utils.set_random_seed(9)
        inp = keras.Input((6,))
        h = keras.layers.Dense(5, activation="tanh", name="hidden")(inp)
        model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(h))
        opt = Ranger(1e-2, sync_period=2, use_ema=True, ema_momentum=0.5) if which == "ranger+ema" else \
            LayerwiseLR(keras.optimizers.Adam(1e-2), {"hidden/kernel": 0.25})
        model.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        return model

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    a = build()
    start = [np.asarray(w) for w in a.weights]
    fit_loss = a.fit(ds, epochs=1, verbose=0, shuffle=False).history["loss"][-1]
    b = build()
    logs = DistributedSteps(tf.distribute.get_strategy()).train_epoch(b, keras.losses.CategoricalCrossentropy(), ds)
    assert logs["loss"] == pytest.approx(fit_loss, rel=1e-5)
    for w0, w1, w2 in zip(start, a.weights, b.weights):
        assert not np.allclose(w0, np.asarray(w1))          # it trained
        np.testing.assert_allclose(np.asarray(w1), np.asarray(w2), atol=1e-6)
