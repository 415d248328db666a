"""``leafnet pretext``: self-supervised pre-training on unlabelled images (a CLI extension).

Imports nothing heavy at module level; see ``leafnet.cli.EXTENSIONS``.
"""

from __future__ import annotations

from leafnet import console
from leafnet.pretext.task import TASK_NAMES


def register(subparsers) -> dict:
    """Add the ``pretext`` sub-command; return ``{name: handler}``."""
    from leafnet.cli import add_train_flags
    from leafnet.cli_help import examples

    p = subparsers.add_parser(
        "pretext", help="pre-train a backbone on unlabelled images (rotation or perturbation pretext task)",
        description="Self-supervised pre-training: learn to tell how each image was rotated (rotation) or the "
                    "colour of a square pasted on it (perturbation). Labels of --data are ignored; a flat folder "
                    "of images works. The run folder holds backbone.keras; transfer it with "
                    "`leafnet fit --weights RUN_DIR`.",
        epilog=examples("leafnet pretext --task rotation --data photos/ --weights none --run-dir runs/rot",
                        "leafnet pretext --task perturbation --data photos/ --weights none --epochs 20"))
    p.add_argument("--task", required=True, choices=TASK_NAMES,
                   help="rotation: which of 4 turns (0, 90, 180, 270 degrees) an image got; "
                        "perturbation: whether a square pasted on it is black or white")
    add_train_flags(p)
    return {"pretext": cmd_pretext}


def cmd_pretext(args) -> int:
    from leafnet.cli import train_flags
    from leafnet.config import load_config
    from leafnet.pretext.run import pretext

    cfg = load_config(args.config, flags=train_flags(args), overrides=args.overrides)
    run = pretext(cfg, task=args.task)
    m = run.metrics
    console.info(f"pretext ({args.task}) val_accuracy {m.get('val_accuracy', float('nan')):.4f}")
    console.info(f"run folder: {run.root}   backbone: {run.root / 'backbone.keras'}")
    return 0
