import os
import subprocess
import sys

import pytest

from leafnet.perf import CPU_DEFAULTS, configure_cpu, has_avx512_bf16


def test_configure_cpu_sets_missing_defaults():
    env = {}
    applied = configure_cpu(env)
    assert applied == CPU_DEFAULTS
    assert env == CPU_DEFAULTS


def test_configure_cpu_keeps_user_values():
    env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert configure_cpu(env) == {}
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "0"}


def test_configure_cpu_opt_out():
    env = {"LEAFNET_CPU_DEFAULTS": "0"}
    assert configure_cpu(env) == {}
    assert env == {"LEAFNET_CPU_DEFAULTS": "0"}


def test_has_avx512_bf16_reads_flags():
    assert has_avx512_bf16("processor : 0\nflags : fpu avx512f avx512_bf16 sse\n")
    assert has_avx512_bf16("flags\t\t: fpu amx_bf16\n")
    assert not has_avx512_bf16("flags : fpu avx512f avx2\n")
    assert not has_avx512_bf16("processor : 0\n")


_SPIN_SCRIPT = """
import tensorflow as tf
from tensorflow.python.eager import context
from leafnet.perf import configure_tensorflow
first = configure_tensorflow()
tf.constant(1.0) + 1.0                       # TensorFlow's first op starts the context
print(first, context.context().config.experimental.disable_thread_spinning, configure_tensorflow())
"""


@pytest.mark.parametrize("opt_out", [False, True])
def test_configure_tensorflow_stops_thread_spinning_before_the_first_op(opt_out):
    env = {k: v for k, v in os.environ.items() if k != "LEAFNET_CPU_DEFAULTS"}
    if opt_out:
        env["LEAFNET_CPU_DEFAULTS"] = "0"
    out = subprocess.run([sys.executable, "-c", _SPIN_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    # applied before the first op, in effect after it, and a no-op once TensorFlow runs
    assert out.stdout.split() == (["False", "False", "False"] if opt_out else ["True", "True", "False"])
