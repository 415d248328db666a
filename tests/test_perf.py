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
