"""tf.distribute: MirroredStrategy over two logical CPU devices trains one run folder, with
the global batch and learning rates scaled; the scaling itself against a hand computation."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from leafnet.config import Config
from leafnet.train.distribute import scale_for_replicas


def test_scaling_for_replicas():
    cfg = Config()
    cfg.data.batch_size, cfg.transfer.lr, cfg.finetune.lr, cfg.transfer.max_lr = 16, 1e-3, 1e-4, 5e-3
    out = scale_for_replicas(cfg, 4)
    assert out.data.batch_size == 64
    assert (out.transfer.lr, out.finetune.lr, out.transfer.max_lr) == pytest.approx((4e-3, 4e-4, 2e-2))
    assert out.finetune.max_lr is None and cfg.data.batch_size == 16       # the original is untouched
    assert scale_for_replicas(cfg, 1).data.batch_size == 16


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus(leaves, tmp_path, tiny_config):
    cfg = tiny_config(leaves, tmp_path / "run", run__distribute="mirrored", run__verbose=2,
                      transfer__epochs=2, finetune__epochs=1)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    script = textwrap.dedent(f"""
        import json, sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import leafnet
        run = leafnet.fit(json.load(open({str(tmp_path / "cfg.json")!r})))
        m = run.load_model()
        print(json.dumps({{"val_accuracy": run.metrics["val_accuracy"], "layers": len(m.layers)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 replica(s); global batch 32, learning rates x2" in out.stdout
    history = leafnet_history(tmp_path / "run")
    assert [r["phase"] for r in history] == ["transfer", "transfer", "finetune"]
    assert float(history[0]["lr"]) == pytest.approx(2 * cfg["transfer"]["lr"], rel=1e-5)   # scaled lr in use
    stored = (tmp_path / "run" / "config.yaml").read_text()
    assert "batch_size: 16" in stored                                                  # the config as given
    assert json.loads(out.stdout.strip().splitlines()[-1])["val_accuracy"] >= 0


def leafnet_history(run_dir):
    from leafnet.runs import read_csv

    return read_csv(run_dir / "history.csv")
