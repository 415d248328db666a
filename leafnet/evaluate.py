"""``leafnet evaluate``: a trained run on its train / val split or on another labelled folder.

Writes to ``RUN/eval/``:

- ``<stem>.json``: accuracy, mean per-class accuracy, per-class precision / recall / F1,
  top-k accuracy, cross-entropy, the confusion matrix and the most-confused pairs;
- ``<stem>_predictions.csv``: path, true, predicted, confidence, loss (highest loss first);
- ``<stem>_confusion.csv``: the whole confusion matrix (counts; header: the class names);
- ``<stem>_confusion.png`` (counts), ``<stem>_confusion_normalized.png`` (row shares),
  ``<stem>_top_losses.png`` (the 16 images with the highest loss); past
  :data:`leafnet.plots.MATRIX_UP_TO` classes the matrices show the most confused classes only.

The numbers are written before the figures: a figure that fails to draw is a warning line.

An image that cannot be read (damaged or removed since training) is left out; the report
lists it under ``skipped`` and the console says so.

``stem`` is the subset (``train``, ``val`` or, with ``data=DIR``, the folder's name), with
``_tta`` appended under test-time augmentation, so TTA numbers never replace the plain ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from leafnet.confusion import write_confusion_csv
from leafnet.errors import DataError, LeafnetError
from leafnet.runs import Run, RunDir, inside, io_guard, is_run_dir, safe_filename, write_csv, write_json

PREDICTIONS_HEADER = ["path", "true", "predicted", "confidence", "loss"]
EVAL_DIR = "eval"
EVAL_SUFFIXES = {"report": ".json", "predictions": "_predictions.csv", "confusion_csv": "_confusion.csv",
                 "confusion": "_confusion.png",
                 "confusion_normalized": "_confusion_normalized.png", "top_losses": "_top_losses.png"}
SUBSET_ORDER = ("val", "test", "train")     # how pages list the evaluations


def run_image_size(run: RunDir, model=None) -> int:
    """The square input size of a run: ``config.yaml`` ``data.image_size``, else the model's input."""
    return Run(run.root).image_size(model)


def load_run_model(run: RunDir):
    """The run's ``model.keras`` (safe mode); a missing or damaged file is one line that says so."""
    return Run(run.root).load_model()


def predict_probs(model, images, batch_size: int = 64, tta: bool = False) -> np.ndarray:
    """Probabilities ``[N, C]`` of ``model`` on an :class:`~leafnet.data.pipeline.ImageSet`.

    With ``tta``: the mean over the image, its horizontal flip and its vertical flip.
    """
    import tensorflow as tf

    ds = images.dataset(batch_size).map(lambda x, y: x)
    probs = model.predict(ds, verbose=0)
    if tta:
        for flip in (tf.image.flip_left_right, tf.image.flip_up_down):
            probs = probs + model.predict(ds.map(flip), verbose=0)
        probs = probs / 3.0
    return np.asarray(probs, dtype=np.float64)


def _predict_readable(model, paths: list[str], labels: np.ndarray, num_classes: int, size: int, batch_size: int,
                      tta: bool) -> tuple[np.ndarray, list[str], np.ndarray, list[dict]]:
    """``(probabilities, paths, labels, skipped)`` over the images that can be read: a file
    damaged or removed since training is left out and listed in ``skipped`` (``path``,
    ``error``, as ``predict`` reports it), and the others are evaluated. The files are
    checked one by one only when the batched pipeline fails on one of them."""
    import tensorflow as tf

    from leafnet.data.codec_messages import quiet_decoders
    from leafnet.data.pipeline import ImageSet, choose_cache
    from leafnet.predict import decode_file

    def run(ps, ys):
        images = ImageSet(ps, ys, num_classes, size)
        mode = choose_cache("auto", len(images), size)
        images.cache("memory" if mode == "memory" else "none")
        return predict_probs(model, images, batch_size=batch_size, tta=tta)

    try:
        return run(paths, labels), paths, labels, []
    except tf.errors.OpError:
        pass
    with quiet_decoders():     # each skipped file's reason is reported; the decoders' lines would repeat it
        errors = [decode_file(p, size)[1] for p in paths]
    skipped = [{"path": p, "error": e} for p, e in zip(paths, errors) if e]
    keep = [i for i, e in enumerate(errors) if not e]
    paths, labels = [paths[i] for i in keep], labels[keep]
    probs = run(paths, labels) if paths else np.zeros((0, num_classes))
    return probs, paths, labels, skipped


def compute_metrics(y: np.ndarray, probs: np.ndarray, classes: Sequence[str], top_k: int = 5) -> dict:
    """Every number of the evaluation report from labels ``y`` and probabilities ``probs``."""
    y = np.asarray(y, dtype=np.int64)
    n, c = probs.shape if len(probs) else (0, len(classes))
    pred = probs.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    losses = -np.log(np.clip(probs[np.arange(n), y], 1e-12, 1.0)) if n else np.zeros(0)
    k = max(1, min(int(top_k), c))
    if n:
        topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        topk_acc = float((topk == y[:, None]).any(axis=1).mean())
    else:
        topk_acc = float("nan")
    per_class = {}
    recalls = []
    for i, name in enumerate(classes):
        tp, support, predicted = int(cm[i, i]), int(cm[i].sum()), int(cm[:, i].sum())
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = (2 * precision * recall / (precision + recall) if precision and recall else
              (0.0 if precision is not None and recall is not None else None))
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support,
                           "predicted": predicted}
        if recall is not None:
            recalls.append(recall)
    off = cm - np.diag(np.diagonal(cm))
    rows, cols = np.nonzero(off)
    order = np.lexsort((cols, rows, -off[rows, cols]))[:5]   # the largest first, ties in class order
    confused = [{"true": classes[i], "predicted": classes[j], "count": int(cm[i, j]),
                 "share_of_true": int(cm[i, j]) / int(cm[i].sum())} for i, j in zip(rows[order], cols[order])]
    return {
        "images": int(n),
        "accuracy": float((pred == y).mean()) if n else float("nan"),
        "mean_class_accuracy": float(np.mean(recalls)) if recalls else float("nan"),
        "top_k": k, "top_k_accuracy": topk_acc,
        "loss": float(losses.mean()) if n else float("nan"),
        "per_class": per_class,
        "classes": list(classes),
        "confusion": cm.tolist(),
        "most_confused": confused,
    }, pred, losses


def eval_label(subset: str, tta: bool) -> str:
    """How pages and figures name an evaluation: ``val``, ``val (TTA)``."""
    return f"{subset} (TTA)" if tta else subset


def eval_stem(subset: str, tta: bool) -> str:
    """The file-name stem of an evaluation under ``RUN/eval/``: ``val``, ``val_tta``."""
    return f"{subset}_tta" if tta else subset


def eval_files(run_dir: str | os.PathLike, stem: str) -> dict[str, Path]:
    """The files of one evaluation, by kind (see the module docstring)."""
    out = Path(run_dir) / EVAL_DIR
    return {kind: out / f"{stem}{suffix}" for kind, suffix in EVAL_SUFFIXES.items()}


def saved_evaluations(run_dir: str | os.PathLike) -> list[dict]:
    """Every evaluation under ``RUN/eval/`` (any ``<stem>.json``), each report with ``label``
    and ``paths`` (its files that exist, by kind). Order: val, test, train, other subsets by
    name; each plain before TTA."""
    found = []
    for path in sorted((Path(run_dir) / EVAL_DIR).glob("*.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(report, dict) or "subset" not in report or "accuracy" not in report:
            continue
        tta = bool(report.get("tta"))
        paths = {k: p for k, p in eval_files(run_dir, path.stem).items() if p.is_file()}
        found.append({**report, "tta": tta, "label": eval_label(str(report["subset"]), tta), "paths": paths})
    order = {name: i for i, name in enumerate(SUBSET_ORDER)}
    return sorted(found, key=lambda r: (order.get(r["subset"], len(order)), str(r["subset"]), r["tta"]))


def _subset_files(run: Run, subset: str, data, classes: list[str]) -> tuple[str, list[str], np.ndarray]:
    if data is not None:
        from leafnet.data.scan import scan_folder

        scan = scan_folder(data, classes=classes)
        name = safe_filename(Path(data).resolve().name or "data")  # becomes eval/<name>.json
        return name, scan.files, np.asarray(scan.labels, dtype=np.int64)
    if subset not in ("train", "val", "test"):
        raise LeafnetError("subset must be 'train', 'val' or 'test' (or give a labelled folder with --data); "
                           f"received {subset!r}")
    from leafnet.data.verify import check_rows

    check_rows(run.dir)
    paths, labels = run.images(subset)
    if not paths:
        hint = " (train with --test DIR, or a data folder laid out as train/ val/ test/)" if subset == "test" else ""
        raise DataError(f"the {subset} subset of {run.root} is empty{hint}")
    return subset, paths, np.asarray(labels, dtype=np.int64)


def evaluate(run_dir: str | os.PathLike, subset: str = "val", data: str | os.PathLike | None = None,
             tta: bool = False, top_k: int = 5, batch_size: int = 64, plots: bool = True) -> dict:
    """Evaluate a finished run; write ``RUN/eval/<stem>.*``; return the report (``<stem>.json``).

    Args:
        run_dir: the run folder.
        subset: ``"train"`` or ``"val"`` (the run's split), ignored when ``data`` is given.
        data: a labelled folder whose class folders match the run's ``classes.json``.
        tta: average the probabilities over the image and its horizontal and vertical flips.
        top_k: k of the top-k accuracy.
    """
    run = Run(run_dir)
    if not is_run_dir(run.root):
        raise LeafnetError(f"{run.root} is not a leafnet run folder (no config.yaml / classes.json)")
    classes = run.classes
    name, paths, labels = _subset_files(run, subset, data, classes)
    model = run.load_model()
    size = run.image_size(model)

    probs, paths, labels, skipped = _predict_readable(model, paths, labels, len(classes), size, batch_size, tta)
    if not paths:
        raise DataError(f"none of the {len(skipped)} {name} images of {run.root} can be read "
                        f"(first: {skipped[0]['path']}: {skipped[0]['error']})")
    report, pred, losses = compute_metrics(labels, probs, classes, top_k=top_k)
    conf = probs[np.arange(len(pred)), pred]
    order = np.argsort(-losses, kind="stable")
    rows = [{"path": paths[i], "true": classes[labels[i]], "predicted": classes[pred[i]],
             "confidence": float(conf[i]), "loss": float(losses[i])} for i in order]

    stem, label = eval_stem(name, tta), eval_label(name, tta)
    files = eval_files(run.root, stem)
    if not plots:
        files = {k: files[k] for k in ("report", "predictions", "confusion_csv")}
    files = {k: inside(run.root, v) for k, v in files.items()}
    report = {"run": str(run.root), "subset": name, "data": str(Path(data).resolve()) if data else None,
              "tta": bool(tta), "image_size": size, **report, "skipped": skipped,
              "files": {k: str(v) for k, v in files.items()}}

    def write():
        write_csv(files["predictions"], PREDICTIONS_HEADER,
                  ([r["path"], r["true"], r["predicted"], f"{r['confidence']:.6f}", f"{r['loss']:.6f}"]
                   for r in rows))
        write_confusion_csv(report["confusion"], classes, files["confusion_csv"])
        write_json(files["report"], report)

    io_guard(write, f"the evaluation files in {run.root / EVAL_DIR}")
    if plots:
        from leafnet.plots import draw_or_warn, plot_confusion, plot_top_losses

        cm = np.array(report["confusion"])
        title = f"{label}: {len(rows)} images, accuracy {report['accuracy']:.3f}"
        table = files["confusion_csv"].name
        draw_or_warn(lambda: plot_confusion(cm, classes, files["confusion"], title=title + ", counts", table=table),
                     files["confusion"])
        draw_or_warn(lambda: plot_confusion(cm, classes, files["confusion_normalized"], normalized=True,
                                            title=title + ", row-normalised", table=table),
                     files["confusion_normalized"])
        draw_or_warn(lambda: plot_top_losses(rows, files["top_losses"],
                                             title=f"{label}: the {min(16, len(rows))} highest losses"),
                     files["top_losses"])
    return report


def _fmt(x) -> str:
    return "    -" if x is None else f"{x:5.3f}"


def format_report(report: dict) -> str:
    """The console table of :func:`evaluate`'s report."""
    k = report["top_k"]
    lines = [f"{report['subset']}: {report['images']} images{' (TTA)' if report['tta'] else ''}",
             f"accuracy {report['accuracy']:.4f}   mean per-class accuracy {report['mean_class_accuracy']:.4f}   "
             f"top-{k} accuracy {report['top_k_accuracy']:.4f}   loss {report['loss']:.4f}", ""]
    skipped = report.get("skipped") or []
    if skipped:
        notes = [f"skipped {len(skipped)} image(s) that cannot be read (listed under 'skipped' in the report):"]
        notes += [f"  {s['path']}: {s['error']}" for s in skipped[:10]]
        notes += [f"  ... and {len(skipped) - 10} more"] if len(skipped) > 10 else []
        lines[1:1] = notes
    width = max([5] + [len(c) for c in report["classes"]])
    lines.append(f"{'class':{width}}  precision  recall     f1  support")
    for c, m in report["per_class"].items():
        lines.append(f"{c:{width}}      {_fmt(m['precision'])}   {_fmt(m['recall'])}  {_fmt(m['f1'])}  {m['support']:7d}")
    if report["most_confused"]:
        lines += ["", "most confused (true -> predicted: count):"]
        lines += [f"  {p['true']} -> {p['predicted']}: {p['count']}" for p in report["most_confused"]]
    return "\n".join(lines)
