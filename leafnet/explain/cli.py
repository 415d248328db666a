"""Sub-commands ``explain``, ``inversions`` and ``filters`` (registered by leafnet.cli).

Each parses, calls the Python API and prints where it wrote. No TensorFlow at import time.
"""

from __future__ import annotations

import argparse

from leafnet import console
from leafnet.cli import positive_int
from leafnet.cli_help import examples
from leafnet.explain.inversion import TUNE_LRS, TUNE_WDS, InversionSettings

METHOD_CHOICES = ("saliency", "smoothgrad", "gradcam", "gradcam++", "scorecam", "faster-scorecam", "layercam",
                  "guided-backprop", "guided-gradcam")


def _floats(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas; received {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas; received {text!r}")
    return values


def _pair(text: str) -> tuple[float, float]:
    values = _floats(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH; received {text!r}")
    return values[0], values[1]


def register(sub) -> dict:
    """Add the sub-commands to ``sub`` (argparse sub-parsers); return ``{name: handler}``."""
    p = sub.add_parser("explain", help="saliency / Grad-CAM family / guided backprop maps of images",
                       description="Explain what a run's model attends to: one panel per image (image, overlay, "
                                   "map), a grid, and with --blocks the same image at several backbone blocks.",
                       epilog=examples("leafnet explain runs/demo leaf1.jpg leaf2.jpg --method gradcam++ --class true",
                                       "leafnet explain runs/demo --per-class 2 --method gradcam --blocks 1,3,last",
                                       "leafnet explain runs/demo leaf1.jpg --method smoothgrad --samples 40"))
    p.add_argument("run", metavar="RUN", help="run folder (or a .keras model)")
    p.add_argument("images", nargs="*", metavar="IMAGES", help="image files (or use --per-class N)")
    p.add_argument("--method", default="gradcam", choices=METHOD_CHOICES, metavar="METHOD",
                   help="the attribution method, one of: " + ", ".join(METHOD_CHOICES))
    p.add_argument("--class", dest="target", default="predicted", metavar="predicted|true|NAME",
                   help="the class whose score is explained")
    p.add_argument("--layer", metavar="NAME|block:N",
                   help="CAM layer: NAME, or block:N for the block's last layer with a spatial map "
                        "(default: the last layer with a spatial map)")
    p.add_argument("--blocks", metavar="LIST", help="also compare these backbone blocks side by side, e.g. 1,2,last")
    p.add_argument("--per-class", type=positive_int, default=0, metavar="N",
                   help="add the first N validation images of each class")
    p.add_argument("--samples", type=positive_int, default=20, metavar="N", help="SmoothGrad: noisy copies per image")
    p.add_argument("--max-n", type=positive_int, default=16, metavar="N",
                   help="Faster Score-CAM: feature maps used (those of largest variance)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/explain/METHOD)")

    d = InversionSettings()   # the defaults, shown here; None below keeps them
    p = sub.add_parser("inversions", help="activation maximisation of filters or classes",
                       description="Optimise inputs that excite chosen filters (or class scores) most, with "
                                   "total-variation and norm regularisers, jitter / rotation / scale and a periodic blur.",
                       epilog=examples("leafnet inversions runs/demo --layer block:5 --filters top:8 --tune",
                                       "leafnet inversions runs/demo --classes oak_pinnate,maple_palmate --steps 300",
                                       "leafnet inversions runs/demo --filters 0,5,9 --tv 0.05 --blur-every 4"))
    p.add_argument("run", metavar="RUN", help="run folder (or a .keras model)")
    p.add_argument("--layer", metavar="NAME|block:N",
                   help="the layer: NAME, or block:N for the block's last conv layer (default: the backbone's "
                        "last conv layer)")
    p.add_argument("--filters", metavar="LIST|top:K",
                   help="0,5,9 or top:K (the K filters with the largest summed weights; default top:8)")
    p.add_argument("--classes", metavar="LIST", help="class names to invert instead of filters, e.g. oak,maple")
    p.add_argument("--steps", type=positive_int, metavar="N", help=f"gradient steps (default: {d.steps})")
    p.add_argument("--lr", type=float, metavar="X",
                   help=f"Adam learning rate in pixel values per step (default: {d.lr:g})")
    p.add_argument("--weight-decay", type=float, metavar="X",
                   help=f"Adam's decoupled weight decay (default: {d.weight_decay:g})")
    p.add_argument("--tv", type=float, metavar="X", help=f"total-variation weight (default: {d.tv:g})")
    p.add_argument("--norm", type=float, metavar="X", help=f"L-p norm weight (default: {d.norm:g})")
    p.add_argument("--norm-p", type=positive_int, metavar="P", help=f"p of the norm (default: {d.norm_p})")
    p.add_argument("--jitter", type=int, metavar="N", help=f"random shift in pixels per step (default: {d.jitter})")
    p.add_argument("--rotation", type=float, metavar="X",
                   help=f"random rotation in degrees per step (default: {d.rotation:g})")
    p.add_argument("--scale", type=_pair, metavar="LOW,HIGH",
                   help=f"random zoom range per step (default: {','.join(f'{v:g}' for v in d.scale)})")
    p.add_argument("--blur-every", type=int, metavar="N",
                   help=f"Gaussian blur every N steps, 0: never (default: {d.blur_every})")
    p.add_argument("--blur-sigma", type=float, metavar="X",
                   help=f"blur standard deviation in pixels (default: {d.blur_sigma:g})")
    p.add_argument("--seed", type=int, metavar="N",
                   help=f"seed of the start noise and the random modifiers (default: {d.seed})")
    p.add_argument("--tune", action="store_true",
                   help="first search learning rate x weight decay (median of the last 10 losses)")
    p.add_argument("--tune-lr", type=_floats, metavar="X,Y,...",
                   help=f"learning rates tried (default: {','.join(f'{v:g}' for v in TUNE_LRS)})")
    p.add_argument("--tune-wd", type=_floats, metavar="X,Y,...",
                   help=f"weight decays tried (default: {','.join(f'{v:g}' for v in TUNE_WDS)})")
    p.add_argument("--tune-steps", type=positive_int, metavar="N", help="steps per tried setting (default: --steps)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/explain/inversions)")

    p = sub.add_parser("filters", help="conv filters beside the feature maps they produce on an image",
                       description="Filter i of a conv layer beside feature map i on IMAGE, for an early, a middle "
                                   "and a deep layer; dense weights as images where their input is an image.",
                       epilog=examples("leafnet filters runs/demo leaf1.jpg",
                                       "leafnet filters runs/demo leaf1.jpg --layers early,deep --max-filters 8"))
    p.add_argument("run", metavar="RUN", help="run folder (or a .keras model)")
    p.add_argument("image", metavar="IMAGE", help="one image file")
    p.add_argument("--layers", metavar="LIST", help="early,mid,deep (default) and/or layer names, comma-separated")
    p.add_argument("--max-filters", type=positive_int, default=16, metavar="N", help="filters shown per layer")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/explain/filters)")
    return {"explain": cmd_explain, "inversions": cmd_inversions, "filters": cmd_filters}


def cmd_explain(args) -> int:
    from leafnet.explain.attributions import explain

    e = explain(args.run, args.images, method=args.method, target=args.target, layer=args.layer,
                blocks=args.blocks, per_class=args.per_class, out=args.out, smooth_samples=args.samples,
                max_n=args.max_n)
    for r in e.rows:
        true = f"true {r['true']}, " if r["true"] else ""
        console.info(f"{r['path']}: {true}predicted {r['predicted']} ({r['confidence']:.2f}), explained: {r['target']}")
    where = f" at layer {e.layer}" if e.layer else ""
    console.info(f"{e.method}{where}: {len(e.rows)} image(s) explained; wrote {e.out}/ "
                 f"({', '.join(k for k in ('grid', 'blocks') if k in e.files) or 'panels'}, index.csv)")
    return 0


def cmd_inversions(args) -> int:
    from leafnet.explain.inversion import TUNE_LRS, TUNE_WDS, InversionSettings, inversions

    settings = InversionSettings().replace(
        steps=args.steps, lr=args.lr, weight_decay=args.weight_decay, tv=args.tv, norm=args.norm,
        norm_p=args.norm_p, jitter=args.jitter, rotation=args.rotation, scale=args.scale,
        blur_every=args.blur_every, blur_sigma=args.blur_sigma, seed=args.seed)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    r = inversions(args.run, layer=args.layer, filters=args.filters, classes=classes, settings=settings,
                   tune=args.tune, tune_lrs=args.tune_lr or TUNE_LRS, tune_wds=args.tune_wd or TUNE_WDS,
                   tune_steps=args.tune_steps, out=args.out)
    if r.top:
        console.info(f"top {len(r.top)} filters of {r.layer} by summed weights:")
        console.info(f"  {'rank':>4}  {'filter':>6}  {'summed weight':>13}")
        for rank, (i, w) in enumerate(r.top, start=1):
            console.info(f"  {rank:4d}  {i:6d}  {w:13.5g}")
    if r.tuning:
        console.info("tuning (median of the last 10 mean losses, lower is better):")
        console.info(f"  {'lr':>8}  {'weight decay':>12}  {'score':>10}")
        for t in r.tuning:
            console.info(f"  {t['lr']:8.3g}  {t['weight_decay']:12.3g}  {t['score']:10.5g}")
        console.info(f"best: lr {r.settings.lr:g}, weight decay {r.settings.weight_decay:g}")
    console.info(f"inverted {len(r.labels)} {'class(es)' if classes else 'filter(s) of ' + str(r.layer)} in "
                 f"{r.settings.steps} steps; final loss {r.losses[-1].mean():.4g}; wrote {r.out}/ "
                 f"({', '.join(p.name for p in r.files.values())})")
    return 0


def cmd_filters(args) -> int:
    from leafnet.explain.featuremaps import filters

    r = filters(args.run, args.image, layers=args.layers, max_filters=args.max_filters, out=args.out)
    for entry, f in zip(r.layers, r.files):
        n = len(entry.get("channels", entry.get("units", [])))
        console.info(f"{entry['layer']}: {n} {'filter/map pairs' if 'maps' in entry else 'weight images'} -> {f}")
    console.info(f"wrote {len(r.files)} picture(s) to {r.out}/")
    return 0
