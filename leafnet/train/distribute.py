"""Training on several devices with TensorFlow's own distribution strategies.

``run.distribute``:

- ``none``: the default device.
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over every local GPU (or, with none, the
  logical CPU devices: one unless configured): one replica per device, gradients
  all-reduced every step.
- ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the machines that
  ``TF_CONFIG`` names (each with its local GPUs, or its CPU): every worker runs the same
  command; worker 0 (or the ``chief`` task) writes the run folder, the others write
  nothing. Keras 3's ``model.fit`` fails under this strategy (keras#20585), so the epochs
  run on leafnet's own steps under ``strategy.run`` (:mod:`leafnet.train.steps`); a killed
  worker stops the cluster, and the same command on every worker resumes from the chief's
  last finished epoch.
- ``tpu``: ``tf.distribute.TPUStrategy`` on the TPU the environment names
  (``TPUClusterResolver()``: a Cloud TPU VM, Colab or Kaggle).

``data.batch_size`` is the batch *per replica*: with R replicas a step sees R x batch_size
images, and every learning rate of the config (``lr``, ``max_lr``, ``min_lr``) is multiplied
by R, the linear scaling rule of Goyal et al. (2017), so a config tuned on one device
keeps its per-image step size. The config stored in the run folder is the one given;
history.csv shows the learning rates actually used.
"""

from __future__ import annotations

import copy
import json
import os

from leafnet import console
from leafnet.config import Config
from leafnet.errors import LeafnetError


def make_strategy(name: str):
    """The ``tf.distribute`` strategy for ``run.distribute`` (None for ``none``)."""
    if name == "none":
        return None
    import tensorflow as tf

    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")  # several logical CPUs only if configured
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":
        tf_config = os.environ.get("TF_CONFIG")
        if not tf_config:
            raise LeafnetError("--distribute multiworker needs TF_CONFIG in the environment of every worker, e.g. "
                               '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                               '"index": 0}} (see docs/distributed.md, "Several machines")')
        try:
            cluster = json.loads(tf_config)["cluster"]
            task = json.loads(tf_config)["task"]
            task["type"], int(task["index"])
        except (ValueError, KeyError, TypeError):
            raise LeafnetError("TF_CONFIG is not valid JSON with \"cluster\" and \"task\": {\"type\", "
                               f"\"index\"}} entries: {tf_config[:200]!r}") from None
        if not isinstance(cluster, dict) or not cluster.get("worker") and not cluster.get("chief"):
            raise LeafnetError("TF_CONFIG's cluster lists no workers")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            raise LeafnetError(f"--distribute tpu: no TPU found ({str(e).splitlines()[0]})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise LeafnetError(f"unknown run.distribute {name!r}; choose one of: none, mirrored, multiworker, tpu")


def is_multiworker(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy) -> bool:
    """Whether this process writes the run folder: always, except on the workers of a
    multi-worker cluster other than the chief (the ``chief`` task, else worker 0)."""
    if strategy is None or not is_multiworker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def task_name(strategy) -> str:
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id}"


def scale_for_replicas(cfg: Config, replicas: int) -> Config:
    """A copy of ``cfg`` with the global batch and learning rates of ``replicas`` replicas."""
    out = copy.deepcopy(cfg)
    if replicas == 1:
        return out
    out.data.batch_size = cfg.data.batch_size * replicas
    for phase in (out.transfer, out.finetune):
        for key in ("lr", "max_lr", "min_lr"):
            value = getattr(phase, key, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                setattr(phase, key, value * replicas)
    return out


def distribution(cfg: Config):
    """``(strategy or None, the config to train with)``."""
    strategy = make_strategy(cfg.run.distribute)
    if strategy is None:
        return None, cfg
    replicas = int(strategy.num_replicas_in_sync)
    if cfg.run.verbose:
        console.info(f"distributed ({cfg.run.distribute}): {replicas} replica(s); global batch "
                     f"{cfg.data.batch_size * replicas}, learning rates x{replicas}")
    return strategy, scale_for_replicas(cfg, replicas)


def refuse_multiworker(cfg: Config, command: str) -> None:
    """``--distribute multiworker`` trains one run with ``leafnet fit``; other commands refuse it."""
    if cfg.run.distribute == "multiworker":
        from leafnet.errors import ConfigError

        hint = " (a search spreads its trials over machines with --distributed chief|worker)" \
            if command == "search" else ""
        raise ConfigError(f"--distribute multiworker is for `leafnet fit`; `leafnet {command}` runs on one "
                          f"machine{hint}")
