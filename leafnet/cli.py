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

from leafnet import console
from leafnet.cli_help import HelpFormatter, add_completion, config_help, config_metavar, examples
from leafnet.errors import LeafnetError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped (``\\n``): an error echoing a value a user typed
    (a path with a newline) stays one line."""
    return _LINE_BREAKS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other leafnet error, and the help keeps
    its example lines and shows meaningful defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

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


# flag -> (config key, type, help). Defaults and choices live in leafnet.config only: --help
# shows them from there (leafnet.cli_help.config_help), and argparse's default stays None.
TRAIN_FLAGS = {
    "--data": ("data.data", str, "folder with one sub-folder per class, split into train/val"),
    "--train": ("data.train", str, "training folder of class sub-folders (with --val)"),
    "--val": ("data.val", str, "validation folder of class sub-folders (with --train)"),
    "--test": ("data.test", str, "held-out folder of class sub-folders: never used for training or model "
               "selection, evaluated once at the end"),
    "--val-split": ("data.val_split", float, "fraction of each class held out for validation"),
    "--image-size": ("data.image_size", int, "square input size in pixels"),
    "--batch-size": ("data.batch_size", int, "images per training step (per replica with --distribute)"),
    "--backbone": ("model.backbone", str, "backbone name or alias (see: leafnet backbones)"),
    "--weights": ("model.weights", str, "imagenet (downloaded once by Keras), none (random init), a .keras or "
                  ".weights.h5 file, a leafnet run folder, or a KerasHub hub:PRESET"),
    "--feature-layer": ("model.feature_layer", str,
                        "use the backbone up to this layer as a fixed feature extractor under an MLP head"),
    "--epochs": ("transfer.epochs", int, "epochs of the transfer phase (backbone frozen)"),
    "--lr": ("transfer.lr", float, "learning rate of the transfer phase"),
    "--finetune-blocks": ("finetune.blocks", _blocks, "backbone blocks unfrozen in the fine-tune phase "
                          "(0: no fine-tune phase, all: every block)"),
    "--finetune-epochs": ("finetune.epochs", int, "epochs of the fine-tune phase"),
    "--finetune-lr": ("finetune.lr", float, "learning rate of the fine-tune phase"),
    "--optimizer": (("transfer.optimizer", "finetune.optimizer"), str,
                    "optimizer of both phases"),
    "--loss": (("transfer.loss", "finetune.loss"), str, "loss of both phases"),
    "--schedule": (("transfer.schedule", "finetune.schedule"), str,
                   "learning-rate schedule of both phases; the cyclical ones (triangular, triangular2, "
                   "exp_range) need --max-lr"),
    "--max-lr": ("transfer.max_lr", float, "upper lr of a cyclical schedule in the transfer phase"),
    "--finetune-max-lr": ("finetune.max_lr", float, "upper lr of a cyclical schedule in the fine-tune phase"),
    "--label-smoothing": (("transfer.label_smoothing", "finetune.label_smoothing"), float,
                          "label smoothing of both phases"),
    "--balance": ("data.balance", str, "imbalanced folders: weight the loss by inverse class frequency, "
                  "or draw every class equally often"),
    "--seed": ("run.seed", int, "seed of the split, shuffling and random layers"),
    "--precision": ("run.precision", str, "compute dtype policy (mixed_float16: GPUs; mixed_bfloat16: GPUs, "
                    "TPUs, CPUs with AVX512_BF16)"),
    "--jit-compile": ("run.jit_compile", _bool, "XLA-compile the train step (often faster on a GPU, slower on CPUs)"),
    "--sync-batchnorm": ("run.sync_batchnorm", _bool, "BatchNormalization statistics over the global batch "
                         "of all replicas"),
    "--distribute": ("run.distribute", str, "tf.distribute strategy (--batch-size is per replica; "
                     "multiworker reads TF_CONFIG)"),
    "--cache-features": ("data.cache_features", str,
                         "train the head on backbone features computed once (frozen phase; auto: when exact)"),
    "--run-dir": ("run.dir", str, "run folder (rerun with the same folder to resume)"),
}
# metavars the config field's type does not give (that gives {a,b,c}, N, X or NAME)
TRAIN_METAVARS = {"--data": "DIR", "--train": "DIR", "--val": "DIR", "--test": "DIR", "--run-dir": "DIR", "--val-split": "F",
                  "--label-smoothing": "F", "--feature-layer": "LAYER", "--finetune-blocks": "N|all",
                  "--weights": "imagenet|none|PATH|hub:PRESET"}


def add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config, overridden by the flags (see: leafnet config)")
    p.add_argument("--demo", action="store_true", help="train on the embedded synthetic leaves")
    for flag, (keys, tp, help_) in TRAIN_FLAGS.items():
        p.add_argument(flag, dest=_dest(keys), type=tp, default=None,
                       metavar=config_metavar(keys, tp, TRAIN_METAVARS.get(flag)), help=config_help(keys, help_))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config key, e.g. --set augment.rotation=0.2 (repeatable; "
                        "every key: leafnet config)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--trust", action="store_true",
                   help="let a --weights .keras file run code on loading (Lambda layers); only for files you trust")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="leafnet", description="Transfer learning for image classification (Keras 3 / TensorFlow).",
                     epilog=examples("leafnet fit --demo --run-dir runs/demo",
                                     "leafnet fit --data leaves/ --backbone b4 --finetune-blocks 2 --run-dir runs/b4",
                                     "leafnet evaluate runs/b4 --tta",
                                     "leafnet predict runs/b4 new_photos/ --out preds.csv")
                     + "\n\nEvery command explains its flags: leafnet COMMAND --help.")
    from leafnet import __version__

    parser.add_argument("--version", action="version", version=f"leafnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("fit", help="train a classifier (transfer phase, then fine-tune phase)",
                       description="Train a classifier on a folder of class sub-folders: the head on a frozen "
                                   "backbone, then the last backbone blocks. Precedence: defaults < --config "
                                   "FILE < flags and --set.",
                       epilog=examples("leafnet fit --demo --run-dir runs/demo",
                                       "leafnet fit --data leaves/ --backbone b0 --run-dir runs/b0",
                                       "leafnet fit --train train/ --val val/ --backbone b4 --optimizer adamw",
                                       "leafnet fit --config configs/demo.yaml --set augment.rotation=0.2 --epochs 5"))
    add_train_flags(p)

    p = sub.add_parser("config", help="print the config that fit would use (defaults, documented)",
                       description="Print the resolved config as YAML, every key with its default and what it "
                                   "does; it takes the flags of fit.",
                       epilog=examples("leafnet config",
                                       "leafnet config --config configs/demo.yaml --backbone b4 --lr 3e-3"))
    add_train_flags(p)

    sub.add_parser("backbones", help="list the backbones, their default sizes and blocks",
                   description="List the backbone registry: name, default input size, ImageNet weights, "
                               "number of blocks --finetune-blocks counts, aliases.",
                   epilog=examples("leafnet backbones"))

    p = sub.add_parser("lr-find", help="learning-rate range test: a plot and a suggested lr",
                       description="Grow the lr exponentially over a few hundred steps and plot the loss (fastai's "
                                   "lr_find); it takes the flags of fit.",
                       epilog=examples("leafnet lr-find --data leaves/ --backbone b0",
                                       "leafnet lr-find --config configs/demo.yaml --phase finetune --steps 200"))
    add_train_flags(p)
    p.add_argument("--phase", default="transfer", choices=("transfer", "finetune"),
                   help="the phase whose lr is tested (finetune: with the blocks of --finetune-blocks unfrozen)")
    p.add_argument("--start-lr", type=float, default=1e-7, metavar="X", help="first learning rate")
    p.add_argument("--end-lr", type=float, default=10.0, metavar="X", help="last learning rate")
    p.add_argument("--steps", type=int, default=100, metavar="N", help="training steps from --start-lr to --end-lr")
    p.add_argument("--out", default="runs/lr_find", metavar="DIR", help="folder for lr_find.png and lr_find.csv")

    data = sub.add_parser("data", help="data tools: synth, check",
                          description="Generate a synthetic leaf folder, or check a folder before training.",
                          epilog=examples("leafnet data synth leaves/ --classes 4 --per-class 30 --size 64",
                                          "leafnet data check leaves/"))
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=_Parser)
    s = dsub.add_parser("synth", help="generate synthetic leaves (the demo set)",
                        description="Draw synthetic leaves of several species, one sub-folder per species.",
                        epilog=examples("leafnet data synth leaves/",
                                        "leafnet data synth small/ --classes 4 --per-class 30 --size 48 --format jpg"))
    s.add_argument("out", metavar="OUT", help="output folder (one sub-folder per species)")
    s.add_argument("--classes", type=int, default=14, metavar="N", help="number of species")
    s.add_argument("--per-class", type=int, default=100, metavar="N", help="images per species")
    s.add_argument("--size", type=int, default=128, metavar="N", help="image width and height in pixels")
    s.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the drawing")
    s.add_argument("--disease", type=float, default=0.1, metavar="F", help="probability of disease spots on a leaf")
    s.add_argument("--format", dest="image_format", default="png", choices=("png", "jpg"), help="image file format")
    c = dsub.add_parser("check", help="scan a folder: class counts, bad files, duplicates, leakage",
                        description="Scan a folder of class sub-folders: images per class, files that cannot be "
                                    "read, byte-identical duplicates and those that would cross the train/val split.",
                        epilog=examples("leafnet data check leaves/",
                                        "leafnet data check leaves/ --val-split 0.2 --seed 42 --json check.json"))
    c.add_argument("folder", metavar="DIR", help="folder with one sub-folder per class")
    c.add_argument("--val-split", type=float, default=None, metavar="F",
                   help=config_help("data.val_split", "check the train/val split this fraction would give"))
    c.add_argument("--seed", type=int, default=None, metavar="N", help=config_help("run.seed", "seed of that split"))
    c.add_argument("--json", dest="json_out", metavar="FILE", help="also write the report to this JSON file")

    p = sub.add_parser("evaluate", help="metrics, confusion matrices and top losses of a run",
                       description="Evaluate a run on its validation (or training) split or on a labelled folder: "
                                   "report, confusion matrices, top losses and a predictions CSV under RUN/eval.",
                       epilog=examples("leafnet evaluate runs/b0",
                                       "leafnet evaluate runs/b0 --subset val --tta --top-k 10",
                                       "leafnet evaluate runs/b0 --data test_images/"))
    p.add_argument("run", metavar="RUN", help="run folder")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", metavar="DIR", help="a labelled folder with the run's class folders")
    g.add_argument("--subset", default="val", choices=("train", "val", "test"),
                   help="the run's own split to evaluate (test: the held-out subset)")
    p.add_argument("--tta", action="store_true", help="average over the image and its horizontal/vertical flips")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="top-k accuracy reported beside top-1")

    p = sub.add_parser("predict", help="classify images with a run or a .keras model; write a CSV",
                       description="Classify image files and folders of images; write one CSV row per image "
                                   "with the top classes and their probabilities.",
                       epilog=examples("leafnet predict runs/b0 photo.jpg new_photos/ --out preds.csv",
                                       "leafnet predict model.keras new_photos/ --out preds.csv --engine onnx"))
    p.add_argument("model", metavar="RUN|MODEL", help="run folder or .keras file")
    p.add_argument("inputs", nargs="+", metavar="IMAGES_OR_FOLDERS", help="image files and folders of images")
    p.add_argument("--out", required=True, metavar="FILE", help="CSV file to write")
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="classes written per image")
    p.add_argument("--trust", action="store_true",
                   help="let the model file run code on loading (Lambda layers); only for files you trust")
    p.add_argument("--engine", choices=("keras", "onnx"), default="keras",
                   help="run the model with Keras, or export it once to ONNX and run it under ONNX Runtime "
                        "(faster on CPUs; needs leafnet[onnx])")

    p = sub.add_parser("export", help="export a run: savedmodel, keras, tflite, onnx, or a submission folder",
                       description="Export a run's model, with a model_card.json beside it.",
                       epilog=examples("leafnet export runs/b0 --format savedmodel",
                                       "leafnet export runs/b0 --format tflite --quantize float16",
                                       "leafnet export runs/b0 --format onnx --out exported/"))
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--format", default="savedmodel", choices=("savedmodel", "keras", "tflite", "onnx", "submission"),
                   help="export format (submission: a SavedModel with a model.py)")
    p.add_argument("--quantize", default="none", choices=("none", "float16", "dynamic"),
                   help="tflite only: float16 weights, or dynamic-range int8 weights (accuracy change in model_card.json)")
    p.add_argument("--out", metavar="DIR", help="export folder (default: RUN/export/FORMAT)")

    for module in EXTENSIONS:
        COMMANDS.update(importlib.import_module(module).register(sub))
    add_completion(parser)
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
    console.info(r.summary())
    return 0


def cmd_config(args) -> int:
    from leafnet.config import describe, load_config

    cfg = load_config(args.config, flags=train_flags(args), overrides=args.overrides)
    console.info(describe(cfg))
    return 0


def cmd_backbones(args) -> int:
    from leafnet.models.registry import list_backbones

    console.info(f"{'name':22} {'size':>5}  {'imagenet':8}  {'blocks':6}  aliases / family")
    for spec in list_backbones():
        console.info(f"{spec.name:22} {spec.default_size:5}  {'yes' if spec.imagenet else 'no':8}  "
                     f"{len(spec.trainable_blocks):6}  {', '.join(spec.aliases)} — {spec.family}")
    return 0


def cmd_data(args) -> int:
    if args.data_command == "synth":
        from leafnet.datasets import generate

        try:
            counts = generate(args.out, classes=args.classes, per_class=args.per_class, size=args.size,
                              seed=args.seed, disease=args.disease, image_format=args.image_format)
        except ValueError as e:
            raise LeafnetError(str(e)) from None
        console.info(f"wrote {sum(counts.values())} images of {len(counts)} species to {args.out}")
        return 0
    if args.data_command == "check":
        from leafnet.data.check import check_folder

        return check_folder(args.folder, val_split=args.val_split, seed=args.seed, json_out=args.json_out)
    raise LeafnetError("data needs a sub-command: synth or check (see: leafnet data --help)")


def cmd_evaluate(args) -> int:
    from leafnet.evaluate import evaluate, format_report

    report = evaluate(args.run, subset=args.subset, data=args.data, tta=args.tta, top_k=args.top_k)
    console.info(format_report(report))
    console.info(f"report: {report['files']['report']}   predictions: {report['files']['predictions']}   "
                 f"plots: {os.path.dirname(report['files']['report'])}")
    return 0


def cmd_predict(args) -> int:
    from leafnet.predict import predict, write_predictions

    results = predict(args.model, args.inputs, top_k=args.top_k, trust=args.trust, engine=args.engine)
    write_predictions(args.out, results, args.top_k)
    bad = sum(1 for r in results if r["error"])
    console.info(f"predicted {len(results) - bad} image(s)" + (f", {bad} could not be read" if bad else "")
                 + f": {args.out}")
    return 0


def cmd_export(args) -> int:
    from leafnet.export import export
    from leafnet.export_usage import describe

    target = export(args.run, format=args.format, out=args.out, quantize=args.quantize, progress=console.info)
    console.info(f"exported ({args.format}): {target}")
    console.info(describe(target))
    return 0


# Modules that add their own sub-commands: each has ``register(subparsers) -> {name: handler}``,
# builds its parsers with ``add_train_flags`` / ``train_flags`` from here, and imports nothing
# heavy (TensorFlow) at module level.
EXTENSIONS: tuple[str, ...] = ("leafnet.tune.cli", "leafnet.pretext.cli", "leafnet.explain.cli", "leafnet.report_cli")

COMMANDS = {"fit": cmd_fit, "config": cmd_config, "backbones": cmd_backbones, "data": cmd_data,
            "lr-find": cmd_lr_find, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leafnet`` console script."""
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return EXIT_USER_ERROR
        if args.command != "config":
            console.import_tensorflow_quietly()
            from leafnet.perf import configure_tensorflow

            configure_tensorflow()   # before TensorFlow's first op
        from leafnet.trust import trusted

        with trusted(getattr(args, "trust", False)):  # --weights files of fit, pretext, search, cv
            return COMMANDS[args.command](args)
    except LeafnetError as e:
        console.error(one_line(str(e)))
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `leafnet backbones | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        console.error("\ninterrupted; rerun the same command (same --run-dir) to resume", prefix="")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
