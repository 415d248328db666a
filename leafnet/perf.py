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

Every default here is an environment variable that TensorFlow reads when it is
imported, so :func:`configure_cpu` must run before ``import tensorflow``; a variable the
user has set is left alone, and ``LEAFNET_CPU_DEFAULTS=0`` turns the defaults off.
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
    if env.get(OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off"):
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
