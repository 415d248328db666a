"""Benchmark: EfficientNet-B0 training and inference on the CPU, leafnet (Keras) against timm.

Each side runs in its own long-lived worker process (so that per-process settings such as
``LD_PRELOAD``, glibc's ``MALLOC_*`` and ``TF_ENABLE_ONEDNN_OPTS`` apply to it alone); the
script alternates the workers, one measurement of ``--steps`` steps each per round, after
a warm-up (tracing) of 2 steps, and prints the medians and the ratio to the first side.

Sub-commands:

* ``timm``: timm's ``efficientnet_b0`` run as its expert users run it (channels_last, glibc
  malloc tuned as in ``shared/BENCHMARKS.md``, ``torch.set_num_threads(cores)``), against
  leafnet's B0 classifier (``build_classifier``, 1000 classes, whole network trained, Adam)
  in float32 as Keras builds it (``keras``), as ``leafnet fit`` runs it (``leafnet``:
  :func:`leafnet.perf.configure_cpu`, :func:`leafnet.perf.configure_tensorflow`,
  BatchNormalization through the fused kernel, :mod:`leafnet.models.fused_bn`, swish's
  fused gradient, :mod:`leafnet.models.fused_swish`, and the data ending in
  :func:`leafnet.data.pipeline.prefetched`; ``fused-bn`` has the fused kernel only,
  ``leafnet-no-swish`` and ``leafnet-autotune`` all but one), under the ``mixed_bfloat16``
  policy (``bf16``), and,
  for inference, exported to ONNX and run by ONNX Runtime (``onnx``, what
  ``leafnet predict --engine onnx`` runs).
* ``settings``: the Keras side only, one setting changed at a time (dtype policy, oneDNN,
  threads, allocator, batch size), to find what helps.

    python tools/bench/cpu.py timm                          # training, 224 px, batch 32
    python tools/bench/cpu.py timm --mode infer
    python tools/bench/cpu.py settings --sides keras,inter-1,onednn-off
    python tools/bench/cpu.py settings --list

timm and torch are not leafnet dependencies: ``pip install --no-deps timm`` beside the CPU
build of torch is enough. timm imports torchvision in a few places that a model does not
need; when torchvision is missing, the timm worker installs an empty stand-in module for
it (``_torchvision_stub``) so ``timm.create_model("efficientnet_b0")`` works. No weights
are downloaded (``pretrained=False``). Without torch or timm the timm sides are skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Worker, alternate, machine_line, serve, table  # noqa: E402

HERE = Path(__file__).resolve()
LIBDIR = "/usr/lib/x86_64-linux-gnu"
JEMALLOC = f"{LIBDIR}/libjemalloc.so.2"
TCMALLOC = f"{LIBDIR}/libtcmalloc_minimal.so.4"
TUNED_GLIBC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736"}
# OpenMP threads that sleep instead of spinning at barriers: on a shared (oversubscribed)
# machine this doubled timm's training speed; on an idle machine it makes no difference.
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}
# The variables a side may set; cleared for every other side, so a shell's settings don't leak in.
MANAGED = ("LD_PRELOAD", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "TF_ENABLE_ONEDNN_OPTS",
           "LEAFNET_CPU_DEFAULTS", "ONEDNN_DEFAULT_FPMATH_MODE", "TF_SET_ONEDNN_FPMATH_MODE", "OMP_WAIT_POLICY")

# name -> (kind, worker arguments, environment). Batch size defaults to --batch.
SIDES: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "timm": ("timm", ["--channels-last"], TUNED_GLIBC | PASSIVE),
    "timm-spin": ("timm", ["--channels-last"], TUNED_GLIBC),
    "timm-bf16": ("timm", ["--channels-last", "--bf16"], TUNED_GLIBC | PASSIVE),
    "timm-default-malloc": ("timm", ["--channels-last"], PASSIVE),
    "keras": ("keras", [], {}),
    "leafnet": ("keras", ["--configure-cpu", "--fused-bn", "--fused-swish", "--leafnet-data"], {}),
    "leafnet-bf16": ("keras", ["--configure-cpu", "--fused-bn", "--fused-swish", "--leafnet-data",
                               "--precision", "mixed_bfloat16"], {}),
    # leafnet without one of its defaults: swish's gradient (fused_swish), tf.data's
    # autotuning off (pipeline.prefetched).
    "leafnet-no-swish": ("keras", ["--configure-cpu", "--fused-bn", "--leafnet-data"], {}),
    "leafnet-autotune": ("keras", ["--configure-cpu", "--fused-bn", "--fused-swish"], {}),
    # Inference only: the same model exported by `leafnet export --format onnx`, run by ONNX Runtime.
    "onnx": ("keras", ["--engine", "onnx"], {}),
    "fused-bn": ("keras", ["--fused-bn"], {}),
    "leafnet-inter-1": ("keras", ["--configure-cpu", "--fused-bn", "--fused-swish", "--leafnet-data",
                                  "--inter", "1"], {}),
    "bf16": ("keras", ["--precision", "mixed_bfloat16"], {}),
    "onednn-off": ("keras", [], {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "fpmath-bf16": ("keras", [], {"ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}),
    "inter-1": ("keras", ["--inter", "1"], {}),
    "threads-1-1": ("keras", ["--intra", "1", "--inter", "1"], {}),
    "jemalloc": ("keras", [], {"LD_PRELOAD": JEMALLOC}),
    "tcmalloc": ("keras", [], {"LD_PRELOAD": TCMALLOC}),
    "glibc-tuned": ("keras", [], TUNED_GLIBC),
    "batch64": ("keras", ["--batch", "64"], {}),
    "batch16": ("keras", ["--batch", "16"], {}),
    "bf16-batch64": ("keras", ["--precision", "mixed_bfloat16", "--batch", "64"], {}),
    "bf16-tcmalloc": ("keras", ["--precision", "mixed_bfloat16"], {"LD_PRELOAD": TCMALLOC}),
}


# ----------------------------------------------------------------------------- workers

def timed(n: int, step) -> list[float]:
    """Call ``step()`` ``n`` times; the wall time of each call."""
    seconds = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
    return seconds


def step_times():
    """A Keras callback that keeps each train or predict step's wall time (``.seconds``)."""
    import keras

    class _StepTimes(keras.callbacks.Callback):
        def reset(self):
            self.seconds = []
            return self

        def _begin(self, batch, logs=None):
            self._t0 = time.perf_counter()

        def _end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self._t0)

        on_train_batch_begin = on_predict_batch_begin = _begin
        on_train_batch_end = on_predict_batch_end = _end

    return _StepTimes().reset()


def keras_worker(args) -> None:
    if args.configure_cpu:
        from leafnet.perf import configure_cpu

        configure_cpu()
    import keras
    import numpy as np
    import tensorflow as tf

    if args.configure_cpu:   # and TensorFlow's threads, as leafnet's CLI does before the first op
        from leafnet.perf import configure_tensorflow

        configure_tensorflow()
    if args.intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    if args.inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    keras.mixed_precision.set_global_policy(args.precision)

    from leafnet.config import ModelConfig
    from leafnet.models.classifier import build_classifier, set_trainable
    from leafnet.models.registry import get_backbone

    spec = get_backbone("b0")
    keras.utils.set_random_seed(0)
    model = build_classifier(spec, args.classes, args.size, ModelConfig(weights="none"), None, seed=0)
    if args.fused_bn:      # what leafnet's build_model does (run.fused_batchnorm)
        from leafnet.models.fused_bn import use_fused_batchnorm

        use_fused_batchnorm(model)
    if args.fused_swish:   # and run.fused_swish
        from leafnet.models.fused_swish import use_fused_swish

        use_fused_swish(model)
    set_trainable(model, spec, "transfer", from_scratch=True)     # the whole network trains, as in timm
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy())
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32"))
    y = tf.one_hot(rng.integers(0, args.classes, args.batch), args.classes)

    if args.engine == "onnx":
        if args.mode == "train":
            raise SystemExit("the onnx side only infers (--mode infer)")
        import tempfile

        from leafnet.export import onnx_runner, save_onnx

        path = Path(tempfile.mkdtemp(prefix="leafnet-bench-onnx-")) / "model.onnx"
        save_onnx(model, args.size, path)
        session, xn = onnx_runner(path), x.numpy()     # what `leafnet predict --engine onnx` runs

        def run(n):
            return n * args.batch, timed(n, lambda: session(xn))
    else:
        from leafnet.data.pipeline import prefetched

        def batches(tensors, n):     # leafnet's pipelines end in pipeline.prefetched (tf.data autotuning off)
            ds = tf.data.Dataset.from_tensors(tensors).repeat(n)
            return prefetched(ds) if args.leafnet_data else ds

        steps = step_times()
        if args.mode == "train":
            def run(n):
                model.fit(batches((x, y), n), epochs=1, verbose=0, callbacks=[steps.reset()])
                return n * args.batch, steps.seconds
        else:
            def run(n):
                model.predict(batches(x, n), verbose=0, callbacks=[steps.reset()])
                return n * args.batch, steps.seconds
    run(2)
    serve({"side": "keras", "engine": args.engine, "fused_bn": args.fused_bn, "fused_swish": args.fused_swish,
           "policy": keras.mixed_precision.global_policy().name,
           "intra": tf.config.threading.get_intra_op_parallelism_threads(),
           "inter": tf.config.threading.get_inter_op_parallelism_threads(),
           "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
           "ld_preload": os.environ.get("LD_PRELOAD", "")}, run)


def timm_worker(args) -> None:
    import torch

    try:
        import torchvision  # noqa: F401
    except ImportError:
        import _torchvision_stub  # noqa: F401
    import timm

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    model = timm.create_model("efficientnet_b0", pretrained=False, num_classes=args.classes)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.rand(args.batch, 3, args.size, args.size).to(memory_format=fmt)
    y = torch.randint(0, args.classes, (args.batch,))
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.bf16 else \
        (lambda: torch.autocast("cpu", enabled=False))
    if args.mode == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()

        def run(n):
            return n * args.batch, timed(n, step)
    else:
        model.eval()

        def run(n):
            with torch.inference_mode(), autocast():
                return n * args.batch, timed(n, lambda: model(x))
    run(2)
    serve({"side": "timm", "torch": torch.__version__, "timm": timm.__version__, "threads": torch.get_num_threads(),
           "malloc": {k: os.environ.get(k) for k in TUNED_GLIBC}}, run)


# ----------------------------------------------------------------------------- parent

def have_timm() -> str | None:
    """None when the timm sides can run, else why not."""
    import importlib.util

    for mod in ("torch", "timm"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install --no-deps timm beside a CPU torch)"
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("timm", "settings"))
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--sides", help="comma-separated side names (the first is the reference); --list shows them")
    p.add_argument("--list", action="store_true", help="print the known sides and exit")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=0, help="steps per measurement (default: 6 train, 20 infer)")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    if args.list:
        for k, (kind, a, env) in SIDES.items():
            print(f"{k:22} {kind:6} {' '.join(a):45} {' '.join(f'{e}={v}' for e, v in env.items())}")
        return 0
    default = "timm,keras,leafnet" if args.command == "timm" else "keras,tcmalloc,jemalloc"
    names = (args.sides or default).split(",")
    unknown = [n for n in names if n not in SIDES]
    if unknown:
        p.error(f"unknown side(s) {', '.join(unknown)}; known: {', '.join(SIDES)}")
    why = have_timm()
    if why and any(SIDES[n][0] == "timm" for n in names):
        print(f"skipping the timm sides: {why}")
        names = [n for n in names if SIDES[n][0] != "timm"]
        if not names:
            return 0
    steps = args.steps or (6 if args.mode == "train" else 20)

    workers = {}
    try:
        for n in names:
            kind, wargs, env = SIDES[n]
            full_env = {k: "" for k in MANAGED if k in os.environ} | env
            if "--batch" not in wargs:
                wargs = wargs + ["--batch", str(args.batch)]
            argv_w = [sys.executable, str(HERE), "--worker", kind, "--mode", args.mode, "--size", str(args.size),
                      "--classes", str(args.classes), *wargs]
            print(f"starting {n} ...", file=sys.stderr, flush=True)
            workers[n] = Worker(n, argv_w, full_env)
        print(f"EfficientNet-B0, {args.mode}, {args.size} px, batch {args.batch} (unless the side says), "
              f"{steps} steps per measurement, {args.rounds} rounds; {machine_line()}")
        for n, w in workers.items():
            print(f"- {n}: {w.info}")
        answers: dict[str, list[dict]] = {n: [] for n in workers}

        def measure(n, w):
            answers[n].append(w.run(steps))
            return answers[n][-1]["images_per_s"]

        rates = alternate({n: (lambda r, n=n, w=w: measure(n, w)) for n, w in workers.items()}, args.rounds)
    finally:
        for w in workers.values():
            w.close()
    print()
    print(f"Whole calls ({steps} steps in one fit/predict call, or a loop for timm), as users run them:")
    print()
    print(table(rates, names[0]))
    print()
    print("rounds: " + "; ".join(f"{k} {', '.join(f'{v:.1f}' for v in vals)}" for k, vals in rates.items()))
    step_rates = {n: [a["step_images_per_s"] for a in answers[n]] for n in names}
    print()
    print("Median step of each call (without the call's set-up and tear-down):")
    print()
    print(table(step_rates, names[0]))
    return 0


def worker_main(argv) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", choices=("keras", "timm"))
    p.add_argument("--mode", default="train")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--precision", default="float32")
    p.add_argument("--intra", type=int)
    p.add_argument("--inter", type=int)
    p.add_argument("--configure-cpu", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--engine", choices=("keras", "onnx"), default="keras")
    p.add_argument("--fused-bn", action="store_true")
    p.add_argument("--fused-swish", action="store_true")
    p.add_argument("--leafnet-data", action="store_true")
    args = p.parse_args(argv)
    (keras_worker if args.worker == "keras" else timm_worker)(args)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main(sys.argv[1:])
    else:
        sys.exit(main())
