"""CPU defaults for TensorFlow, applied before it is imported.

:func:`configure_cpu` sets ``TF_ENABLE_ONEDNN_OPTS=1`` where TensorFlow does not default
to it (it does only on Linux x86), so every platform runs oneDNN's kernels; it must run
before ``import tensorflow``, which reads these variables. :func:`configure_tensorflow`
makes TensorFlow's thread pools sleep instead of spinning on machines without a GPU, so
that on a loaded machine idle threads leave the cores to whoever computes; it runs after
the import and before TensorFlow's first op. A variable the user has set is left alone,
and ``LEAFNET_CPU_DEFAULTS=0`` turns every default off. The settings tried and left off
(bfloat16, other allocators, one inter-op thread, XLA), with figures: docs/performance.md.
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
            return False   # too late, or a GPU machine (the default is for CPUs only)
        config = ctx._config or config_pb2.ConfigProto()
        if config.experimental.disable_thread_spinning:
            return False
        config.experimental.disable_thread_spinning = True
        ctx._config = config
        return True
    except (ImportError, AttributeError):
        return False
