"""The ``leafnet`` command line: parse, build a config, call the Python API, say where outputs went.

User mistakes end with one line on stderr (``error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from typing import Sequence

from leafnet.errors import LeafnetError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped (``\\n``): an error echoing a value a user typed
    (a path with a newline) stays one line."""
    return _LINE_BREAKS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other leafnet error."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise LeafnetError(f"{message} (see: {self.prog} --help)")


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}; received {text!r}")
    return value


def _blocks(text: str) -> int | str:
    return "all" if text == "all" else _int_at_least(text, 0, "an integer >= 0 or 'all'")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (shared by the extension modules' parsers)."""
    return _int_at_least(text, 1, "an integer >= 1")


def _bool(text: str) -> bool:
    value = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if text.lower() not in value:
        raise argparse.ArgumentTypeError(f"expected true or false; received {text!r}")
    return value[text.lower()]


# flag -> (config key, type, help). Defaults live in leafnet.config only.
TRAIN_FLAGS = {
    "--data": ("data.data", str, "folder with one sub-folder per class (split into train/val)"),
    "--train": ("data.train", str, "training folder of class sub-folders (with --val)"),
    "--val": ("data.val", str, "validation folder of class sub-folders (with --train)"),
    "--val-split": ("data.val_split", float, "fraction of each class held out for validation (default 1/6)"),
    "--image-size": ("data.image_size", int, "square input size (default: the backbone's)"),
    "--batch-size": ("data.batch_size", int, "batch size"),
    "--backbone": ("model.backbone", str, "backbone name (see: leafnet backbones)"),
    "--weights": ("model.weights", str, "imagenet | none | PATH (.keras, .weights.h5, run folder)"),
    "--feature-layer": ("model.feature_layer", str,
                        "use the backbone up to this layer as a fixed feature extractor under an MLP head"),
    "--epochs": ("transfer.epochs", int, "epochs of the transfer phase (backbone frozen)"),
    "--lr": ("transfer.lr", float, "learning rate of the transfer phase"),
    "--finetune-blocks": ("finetune.blocks", _blocks, "backbone blocks unfrozen in the fine-tune phase (0: none, all)"),
    "--finetune-epochs": ("finetune.epochs", int, "epochs of the fine-tune phase"),
    "--finetune-lr": ("finetune.lr", float, "learning rate of the fine-tune phase"),
    "--optimizer": (("transfer.optimizer", "finetune.optimizer"), str,
                    "optimizer of both phases: adam, adamw, sgd, rmsprop, nadam, lion, radam, ranger"),
    "--loss": (("transfer.loss", "finetune.loss"), str, "loss of both phases: crossentropy, focal, sigmoid_focal"),
    "--schedule": (("transfer.schedule", "finetune.schedule"), str,
                   "lr schedule of both phases: constant, triangular, triangular2, exp_range, cosine, onecycle"),
    "--max-lr": ("transfer.max_lr", float, "upper lr of a cyclical schedule in the transfer phase"),
    "--finetune-max-lr": ("finetune.max_lr", float, "upper lr of a cyclical schedule in the fine-tune phase"),
    "--label-smoothing": (("transfer.label_smoothing", "finetune.label_smoothing"), float, "label smoothing"),
    "--balance": ("data.balance", str, "imbalanced folders: none, weights, oversample"),
    "--seed": ("run.seed", int, "seed of the split, shuffling and random layers"),
    "--precision": ("run.precision", str, "float32 | mixed_float16 | mixed_bfloat16"),
    "--jit-compile": ("run.jit_compile", _bool, "true | false: XLA-compile the train step"),
    "--sync-batchnorm": ("run.sync_batchnorm", _bool, "true: BatchNormalization statistics over the global batch "
                         "of all replicas"),
    "--distribute": ("run.distribute", str, "none | mirrored | multiworker | tpu (tf.distribute; --batch-size is per replica; "
                     "multiworker reads TF_CONFIG)"),
    "--cache-features": ("data.cache_features", str,
                         "auto | on | off: train the head on backbone features computed once (frozen phase)"),
    "--run-dir": ("run.dir", str, "run folder (rerun with the same folder to resume)"),
}


def add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (see: leafnet config)")
    p.add_argument("--demo", action="store_true", help="train on the embedded synthetic leaves")
    for flag, (keys, tp, help_) in TRAIN_FLAGS.items():
        p.add_argument(flag, dest=_dest(keys), type=tp, default=None, help=help_)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config key, e.g. --set augment.rotation=0.2 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--trust", action="store_true",
                   help="let a --weights .keras file run code on loading (Lambda layers); only for files you trust")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="leafnet", description="Transfer learning for image classification (Keras 3 / TensorFlow).")
    from leafnet import __version__

    parser.add_argument("--version", action="version", version=f"leafnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("fit", help="train a classifier (transfer phase, then fine-tune phase)",
                       description="Train a classifier on a folder of class sub-folders.")
    add_train_flags(p)

    p = sub.add_parser("config", help="print the config that fit would use (defaults, documented)")
    add_train_flags(p)

    sub.add_parser("backbones", help="list the backbones, their default sizes and blocks")

    p = sub.add_parser("lr-find", help="learning-rate range test: a plot and a suggested lr",
                       description="Grow the lr exponentially over a few hundred steps and plot the loss (fastai's lr_find).")
    add_train_flags(p)
    p.add_argument("--phase", default="transfer", choices=("transfer", "finetune"))
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--out", default="runs/lr_find", help="folder for lr_find.png and lr_find.csv")

    data = sub.add_parser("data", help="data tools: synth, check")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=_Parser)
    s = dsub.add_parser("synth", help="generate synthetic leaves (the demo set)")
    s.add_argument("out", help="output folder (one sub-folder per species)")
    s.add_argument("--classes", type=int, default=14)
    s.add_argument("--per-class", type=int, default=100)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--disease", type=float, default=0.1, help="probability of disease spots on a leaf")
    s.add_argument("--format", dest="image_format", default="png", choices=("png", "jpg"))
    c = dsub.add_parser("check", help="scan a folder: class counts, bad files, duplicates, leakage")
    c.add_argument("folder")
    c.add_argument("--val-split", type=float, default=None, help="check the split this fraction would give")
    c.add_argument("--seed", type=int, default=None)
    c.add_argument("--json", dest="json_out", help="also write the report to this JSON file")

    p = sub.add_parser("evaluate", help="metrics, confusion matrices and top losses of a run")
    p.add_argument("run", help="run folder")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", help="a labelled folder with the run's class folders")
    g.add_argument("--subset", default="val", choices=("train", "val"))
    p.add_argument("--tta", action="store_true", help="average over the image and its horizontal/vertical flips")
    p.add_argument("--top-k", type=int, default=5)

    p = sub.add_parser("predict", help="classify images with a run or a .keras model; write a CSV")
    p.add_argument("model", help="run folder or .keras file")
    p.add_argument("inputs", nargs="+", metavar="IMAGES_OR_FOLDERS")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--trust", action="store_true",
                   help="let the model file run code on loading (Lambda layers); only for files you trust")
    p.add_argument("--engine", choices=("keras", "onnx"), default="keras",
                   help="run the model with Keras, or export it once to ONNX and run it under ONNX Runtime "
                        "(faster on CPUs; needs leafnet[onnx])")

    p = sub.add_parser("export", help="export a run: savedmodel, keras, tflite, onnx, or a submission folder")
    p.add_argument("run", help="run folder")
    p.add_argument("--format", default="savedmodel", choices=("savedmodel", "keras", "tflite", "onnx", "submission"))
    p.add_argument("--quantize", default="none", choices=("none", "float16", "dynamic"),
                   help="tflite only: float16 weights, or dynamic-range int8 weights (accuracy change in model_card.json)")
    p.add_argument("--out", help="export folder (default: RUN/export/FORMAT)")

    for module in EXTENSIONS:
        COMMANDS.update(importlib.import_module(module).register(sub))
    return parser


def _dest(keys: str | tuple[str, ...]) -> str:
    return keys if isinstance(keys, str) else "+".join(keys)


def train_flags(args: argparse.Namespace) -> dict:
    flags = {}
    for keys, _, _ in TRAIN_FLAGS.values():
        value = getattr(args, _dest(keys))
        for key in ([keys] if isinstance(keys, str) else keys):
            flags[key] = value
    if args.demo:
        flags["data.demo"] = True
    if args.quiet:
        flags["run.verbose"] = 0
    return flags


def cmd_fit(args) -> int:
    from leafnet.config import load_config

    cfg = load_config(args.config, flags=train_flags(args), overrides=args.overrides)
    from leafnet.train.fit import fit

    fit(cfg)
    return 0


def cmd_lr_find(args) -> int:
    from leafnet.config import load_config
    from leafnet.train.lr_find import lr_find

    cfg = load_config(args.config, flags=train_flags(args), overrides=args.overrides)
    r = lr_find(cfg, phase=args.phase, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps, out=args.out)
    print(r.summary())
    return 0


def cmd_config(args) -> int:
    from leafnet.config import describe, load_config

    cfg = load_config(args.config, flags=train_flags(args), overrides=args.overrides)
    print(describe(cfg))
    return 0


def cmd_backbones(args) -> int:
    from leafnet.models.registry import list_backbones

    print(f"{'name':22} {'size':>5}  {'imagenet':8}  {'blocks':6}  aliases / family")
    for spec in list_backbones():
        print(f"{spec.name:22} {spec.default_size:5}  {'yes' if spec.imagenet else 'no':8}  "
              f"{len(spec.trainable_blocks):6}  {', '.join(spec.aliases)} — {spec.family}")
    return 0


def cmd_data(args) -> int:
    if args.data_command == "synth":
        from leafnet.data.synth import generate

        try:
            counts = generate(args.out, classes=args.classes, per_class=args.per_class, size=args.size,
                              seed=args.seed, disease=args.disease, image_format=args.image_format)
        except ValueError as e:
            raise LeafnetError(str(e)) from None
        print(f"wrote {sum(counts.values())} images of {len(counts)} species to {args.out}")
        return 0
    if args.data_command == "check":
        from leafnet.data.check import check_folder

        return check_folder(args.folder, val_split=args.val_split, seed=args.seed, json_out=args.json_out)
    raise LeafnetError("data needs a sub-command: synth or check (see: leafnet data --help)")


def cmd_evaluate(args) -> int:
    from leafnet.evaluate import evaluate, format_report

    report = evaluate(args.run, subset=args.subset, data=args.data, tta=args.tta, top_k=args.top_k)
    print(format_report(report))
    print(f"report: {report['files']['report']}   predictions: {report['files']['predictions']}   "
          f"plots: {os.path.dirname(report['files']['report'])}")
    return 0


def cmd_predict(args) -> int:
    from leafnet.predict import predict, write_predictions

    results = predict(args.model, args.inputs, top_k=args.top_k, trust=args.trust, engine=args.engine)
    write_predictions(args.out, results, args.top_k)
    bad = sum(1 for r in results if r["error"])
    print(f"predicted {len(results) - bad} image(s)" + (f", {bad} could not be read" if bad else "")
          + f": {args.out}")
    return 0


def cmd_export(args) -> int:
    from leafnet.export import export
    from leafnet.export_usage import describe

    target = export(args.run, format=args.format, out=args.out, quantize=args.quantize, progress=print)
    print(f"exported ({args.format}): {target}")
    print(describe(target))
    return 0


# Modules that add their own sub-commands: each has ``register(subparsers) -> {name: handler}``,
# builds its parsers with ``add_train_flags`` / ``train_flags`` from here, and imports nothing
# heavy (TensorFlow) at module level.
EXTENSIONS: tuple[str, ...] = ("leafnet.tune.cli", "leafnet.pretext.cli", "leafnet.explain.cli")

COMMANDS = {"fit": cmd_fit, "config": cmd_config, "backbones": cmd_backbones, "data": cmd_data,
            "lr-find": cmd_lr_find, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export}


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with C-level stderr muted: its start-up log lines (oneDNN, CUDA
    probing) are printed before any log level applies and mean nothing to a user."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices()  # device probing logs too (cuInit on machines without a GPU)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leafnet`` console script."""
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return EXIT_USER_ERROR
        if args.command != "config":
            _import_tensorflow_quietly()
            from leafnet.perf import configure_tensorflow

            configure_tensorflow()   # before TensorFlow's first op
        from leafnet.trust import trusted

        with trusted(getattr(args, "trust", False)):  # --weights files of fit, pretext, search, cv
            return COMMANDS[args.command](args)
    except LeafnetError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `leafnet backbones | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command (same --run-dir) to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
