"""Sub-commands ``explain``, ``inversions``, ``filters`` and ``report`` (registered by leafnet.cli).

Each parses, calls the Python API and prints where it wrote. No TensorFlow at import time.
"""

from __future__ import annotations

import argparse

from leafnet.cli import positive_int

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
                                   "map), a grid, and with --blocks the same image at several backbone blocks.")
    p.add_argument("run", help="run folder (or a .keras model)")
    p.add_argument("images", nargs="*", metavar="IMAGES", help="image files (or use --per-class N)")
    p.add_argument("--method", default="gradcam", choices=METHOD_CHOICES)
    p.add_argument("--class", dest="target", default="predicted", metavar="predicted|true|NAME",
                   help="the class whose score is explained (default: predicted)")
    p.add_argument("--layer", help="CAM layer: NAME or block:N (the block's last layer with a 4D map; "
                                   "default: the last layer with a spatial map)")
    p.add_argument("--blocks", help="also compare these backbone blocks side by side, e.g. 1,2,last")
    p.add_argument("--per-class", type=positive_int, default=0, metavar="N",
                   help="add the first N validation images of each class")
    p.add_argument("--samples", type=positive_int, default=20, help="SmoothGrad: noisy copies per image")
    p.add_argument("--max-n", type=positive_int, default=16,
                   help="Faster Score-CAM: feature maps used (those of largest variance)")
    p.add_argument("--out", help="output folder (default: RUN/explain/METHOD)")

    p = sub.add_parser("inversions", help="activation maximisation of filters or classes",
                       description="Optimise inputs that excite chosen filters (or class scores) most, with "
                                   "total-variation and norm regularisers, jitter / rotation / scale and a periodic blur.")
    p.add_argument("run", help="run folder (or a .keras model)")
    p.add_argument("--layer", help="NAME or block:N (the block's last conv layer; default: the backbone's last "
                                   "conv layer)")
    p.add_argument("--filters", help="0,5,9 or top:K (the K filters with the largest summed weights; default top:8)")
    p.add_argument("--classes", help="class names to invert instead of filters, e.g. oak,maple")
    p.add_argument("--steps", type=positive_int, help="gradient steps (default 200)")
    p.add_argument("--lr", type=float, help="Adam learning rate in pixel values per step (default 8)")
    p.add_argument("--weight-decay", type=float, help="Adam's decoupled weight decay (default 0)")
    p.add_argument("--tv", type=float, help="total-variation weight (default 0.02)")
    p.add_argument("--norm", type=float, help="L-p norm weight (default 0.005)")
    p.add_argument("--norm-p", type=positive_int, help="p of the norm (default 1)")
    p.add_argument("--jitter", type=int, help="random shift in pixels per step (default 2)")
    p.add_argument("--rotation", type=float, help="random rotation in degrees per step (default 2)")
    p.add_argument("--scale", type=_pair, metavar="LOW,HIGH", help="random zoom range per step (default 0.95,1.05)")
    p.add_argument("--blur-every", type=int, help="Gaussian blur every N steps, 0: never (default 8)")
    p.add_argument("--blur-sigma", type=float, help="blur standard deviation in pixels (default 0.5)")
    p.add_argument("--seed", type=int, help="seed of the start noise and the random modifiers (default 0)")
    p.add_argument("--tune", action="store_true",
                   help="first search learning rate x weight decay (median of the last 10 losses)")
    p.add_argument("--tune-lr", type=_floats, metavar="X,Y,...", help="learning rates tried (default 2,8,32)")
    p.add_argument("--tune-wd", type=_floats, metavar="X,Y,...", help="weight decays tried (default 0,0.001)")
    p.add_argument("--tune-steps", type=positive_int, help="steps per tried setting (default: --steps)")
    p.add_argument("--out", help="output folder (default: RUN/explain/inversions)")

    p = sub.add_parser("filters", help="conv filters beside the feature maps they produce on an image",
                       description="Filter i of a conv layer beside feature map i on IMAGE, for an early, a middle "
                                   "and a deep layer; dense weights as images where their input is an image.")
    p.add_argument("run", help="run folder (or a .keras model)")
    p.add_argument("image", help="one image file")
    p.add_argument("--layers", help="early,mid,deep (default) and/or layer names, comma-separated")
    p.add_argument("--max-filters", type=positive_int, default=16, help="filters shown per layer")
    p.add_argument("--out", help="output folder (default: RUN/explain/filters)")

    p = sub.add_parser("report", help="one HTML page of a run: config, data, curves, metrics, explanations",
                       description="Write RUN/report.html: readable offline, pictures beside it in RUN/.")
    p.add_argument("run", help="run folder")
    p.add_argument("--no-explanations", action="store_true", help="skip the Grad-CAM sample (a few seconds)")
    p.add_argument("--embed", action="store_true", help="embed every picture in the HTML (one file to send)")
    return {"explain": cmd_explain, "inversions": cmd_inversions, "filters": cmd_filters, "report": cmd_report}


def cmd_explain(args) -> int:
    from leafnet.explain.attributions import explain

    e = explain(args.run, args.images, method=args.method, target=args.target, layer=args.layer,
                blocks=args.blocks, per_class=args.per_class, out=args.out, smooth_samples=args.samples,
                max_n=args.max_n)
    for r in e.rows:
        true = f"true {r['true']}, " if r["true"] else ""
        print(f"{r['path']}: {true}predicted {r['predicted']} ({r['confidence']:.2f}), explained: {r['target']}")
    where = f" at layer {e.layer}" if e.layer else ""
    print(f"{e.method}{where}: {len(e.rows)} image(s) explained; wrote {e.out}/ "
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
        print(f"top {len(r.top)} filters of {r.layer} by summed weights:")
        print(f"  {'rank':>4}  {'filter':>6}  {'summed weight':>13}")
        for rank, (i, w) in enumerate(r.top, start=1):
            print(f"  {rank:4d}  {i:6d}  {w:13.5g}")
    if r.tuning:
        print("tuning (median of the last 10 mean losses, lower is better):")
        print(f"  {'lr':>8}  {'weight decay':>12}  {'score':>10}")
        for t in r.tuning:
            print(f"  {t['lr']:8.3g}  {t['weight_decay']:12.3g}  {t['score']:10.5g}")
        print(f"best: lr {r.settings.lr:g}, weight decay {r.settings.weight_decay:g}")
    print(f"inverted {len(r.labels)} {'class(es)' if classes else 'filter(s) of ' + str(r.layer)} in "
          f"{r.settings.steps} steps; final loss {r.losses[-1].mean():.4g}; wrote {r.out}/ "
          f"({', '.join(p.name for p in r.files.values())})")
    return 0


def cmd_filters(args) -> int:
    from leafnet.explain.featuremaps import filters

    r = filters(args.run, args.image, layers=args.layers, max_filters=args.max_filters, out=args.out)
    for entry, f in zip(r.layers, r.files):
        n = len(entry.get("channels", entry.get("units", [])))
        print(f"{entry['layer']}: {n} {'filter/map pairs' if 'maps' in entry else 'weight images'} -> {f}")
    print(f"wrote {len(r.files)} picture(s) to {r.out}/")
    return 0


def cmd_report(args) -> int:
    from leafnet.report import write_report

    path = write_report(args.run, explanations=not args.no_explanations, embed=args.embed)
    print(f"report: {path}")
    return 0
