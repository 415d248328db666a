"""Training on several devices with TensorFlow's own distribution strategies.

``run.distribute``:

- ``none``: the default device.
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over every local GPU (or, with none, the
  logical CPU devices: one unless configured): one replica per device, gradients
  all-reduced every step.
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
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            raise LeafnetError(f"--distribute tpu: no TPU found ({str(e).splitlines()[0]})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise LeafnetError(f"unknown run.distribute {name!r}; choose one of: none, mirrored, tpu")


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
        print(f"distributed ({cfg.run.distribute}): {replicas} replica(s); global batch "
              f"{cfg.data.batch_size * replicas}, learning rates x{replicas}")
    return strategy, scale_for_replicas(cfg, replicas)
