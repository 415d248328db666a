"""CPU defaults for TensorFlow, applied before it is imported.

What was measured on a 2-core AVX-512 (AVX512_BF16) CPU, EfficientNet-B0 at 224 px,
batch 32, the sides alternating in one script (``tools/bench/cpu.py``; README,
"Performance"), ratios to plain float32 Keras:

* ``mixed_bfloat16``: 0.55x for training (slower: TensorFlow's CPU kernels for several
  of EfficientNet's ops, depthwise convolutions and their gradients among them, run in
  bfloat16 through casts and Eigen rather than oneDNN). Not a default; ``--precision``
  chooses it explicitly.
* tcmalloc (``LD_PRELOAD``): 0.96x, within the noise; jemalloc: 0.57x. glibc's malloc
  settings that double PyTorch's speed do nothing for TensorFlow. Not defaults.
* one inter-op thread (``tf.config.threading``): 1.19x median, but the best rounds of
  both sides were equal (12.5 images/s): within the noise of a shared machine. Not a default.
* XLA (``jit_compile``): about 10x slower. Off.
* oneDNN (``TF_ENABLE_ONEDNN_OPTS``): turning it off gave 0.63x, i.e. oneDNN is worth
  1.6x. TensorFlow turns it on by default only on Linux x86; :func:`configure_cpu` makes
  it the default wherever TensorFlow runs, so every platform runs the measured kernels.

* BatchNormalization through the fused kernel: ~1.5x (:mod:`leafnet.models.fused_bn`,
  ``run.fused_batchnorm``).
* Threads that sleep instead of spinning (``disable_thread_spinning``, applied by
  :func:`configure_tensorflow`): B0 training at a median 31.8-33.1 images/s against
  25.0 with TensorFlow's spinning threads (timm 35.4). On this shared machine TensorFlow
  processes fell for whole measurements into a mode at exactly 12.5 or 25.0 images/s
  (steps of 2.56 s); spinning threads burn the CPU time the machine grants, as OpenMP's
  spinning did to timm (0.16x). Sleeping threads fell into it far less often.

The environment variables here are read by TensorFlow when it is imported, so
:func:`configure_cpu` must run before ``import tensorflow``; :func:`configure_tensorflow`
runs after the import and before TensorFlow's first op. A variable the user has set is
left alone, and ``LEAFNET_CPU_DEFAULTS=0`` turns every default off.
"""

from __future__ import annotations

import os
import sys
from typing import MutableMapping

# name -> value; each applied only where the user has not set the variable.
CPU_DEFAULTS: dict[str, str] = {
    "TF_ENABLE_ONEDNN_OPTS": "1",
}
OPT_OUT = "LEAFNET_CPU_DEFAULTS"


def _opted_out(env) -> bool:
    return env.get(OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off")


def configure_cpu(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Apply leafnet's CPU defaults (:data:`CPU_DEFAULTS`) to the environment.

    Args:
        environ: the environment to change; None for ``os.environ``.

    Returns:
        The variables set by this call (empty when TensorFlow is already imported, when
        ``LEAFNET_CPU_DEFAULTS=0``, or when the user set them all).

    Example:
        >>> from leafnet.perf import configure_cpu
        >>> configure_cpu()            # before `import tensorflow`
    """
    env = os.environ if environ is None else environ
    if _opted_out(env):
        return {}
    if environ is None and "tensorflow" in sys.modules:
        return {}   # too late: TensorFlow read its environment when it was imported
    applied = {k: v for k, v in CPU_DEFAULTS.items() if k not in env}
    env.update(applied)
    return applied


def has_avx512_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has native bfloat16 arithmetic (the ``avx512_bf16`` or ``amx_bf16`` flag).

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``; None to read it (False where it does not exist).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def configure_tensorflow() -> bool:
    """Make TensorFlow's thread pools sleep when idle instead of spinning, on machines
    without a GPU (see the module docstring); call after ``import tensorflow`` and before
    its first op. ``leafnet``'s CLI and :func:`leafnet.fit` call it.

    ``ConfigProto.experimental.disable_thread_spinning`` has no public TensorFlow 2 API:
    it is set on the eager context's config before the context starts. Once TensorFlow has
    run an op, or where that private attribute is missing, nothing changes.

    Returns:
        True if the setting was applied by this call.
    """
    if _opted_out(os.environ):
        return False
    try:
        import tensorflow as tf
        from tensorflow.core.protobuf import config_pb2
        from tensorflow.python.eager import context

        ctx = context.context()
        if ctx._initialized or tf.config.list_physical_devices("GPU"):
            return False   # too late, or a GPU machine (where it is not measured)
        config = ctx._config or config_pb2.ConfigProto()
        if config.experimental.disable_thread_spinning:
            return False
        config.experimental.disable_thread_spinning = True
        ctx._config = config
        return True
    except (ImportError, AttributeError):
        return False
