"""What a finished run writes: model.keras, metrics.json (overall and per class, val and
held-out test), the confusion tables and the plots."""

from __future__ import annotations

import numpy as np

from leafnet.config import Config
from leafnet.runs import RunDir, io_guard, save_keras, write_json


def evaluate_split(model, images, classes: list[str], batch_size: int) -> dict:
    """Accuracy, loss and per-class figures of ``model`` on one cached image set."""
    probs = model.predict(images.dataset(batch_size), verbose=0)
    y = np.asarray(images.labels)
    pred = probs.argmax(axis=1)
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class = {}
    for i, c in enumerate(classes):
        total = int(cm[i].sum())
        per_class[c] = {"accuracy": float(cm[i, i] / total) if total else None, "n": total}
    accs = [v["accuracy"] for v in per_class.values() if v["accuracy"] is not None]
    ce = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)))) if len(y) else float("nan")
    return {"accuracy": float((pred == y).mean()) if len(y) else float("nan"), "crossentropy": ce,
            "mean_class_accuracy": float(np.mean(accs)) if accs else float("nan"),
            "per_class": per_class, "confusion": cm.tolist()}


def finish_run(run: RunDir, cfg: Config, model, spec, classes, train, val, history, seconds: float,
               test=None) -> None:
    """Write model.keras, metrics.json and the plots of a completed run; with ``test`` (the
    held-out images), metrics.json's ``test`` block and plots/confusion_test.png. Each
    confusion matrix is also written whole as plots/confusion_<subset>.csv. The numbers are
    written first: a figure that fails to draw is a warning line."""
    from leafnet.confusion import csv_path, write_confusion_csv
    from leafnet.history import restored_epochs
    from leafnet.plots import draw_or_warn, plot_confusion, plot_curves
    from leafnet.train.trainer import plan_phases

    io_guard(lambda: save_keras(model, run.model), str(run.model))
    validated = [r for r in history if r.get("val_loss") is not None]
    best = min(validated, key=lambda r: r["val_loss"]) if validated else {}
    restored = restored_epochs(history, {p.name: p.cfg.monitor for p in plan_phases(cfg)})
    metrics = {
        "val_accuracy": None, "val_loss": None, "val_crossentropy": None, "mean_class_accuracy": None,
        "per_class": None, "confusion": None, "classes": classes,
        "train_images": len(train), "val_images": len(val) if val is not None else 0, "epochs": len(history),
        "best_val_loss_epoch": best.get("epoch"), "restored_epochs": restored, "backbone": spec.name,
        "image_size": cfg.data.image_size,
        "train_seconds_this_session": round(seconds, 1),
    }
    matrices = []   # (png, confusion, title) drawn once metrics.json is written
    if val is not None:
        results = model.evaluate(val.dataset(cfg.data.batch_size), verbose=0, return_dict=True)
        ev = evaluate_split(model, val, classes, cfg.data.batch_size)
        metrics.update({"val_accuracy": ev["accuracy"], "val_loss": float(results["loss"]),
                        "val_crossentropy": ev["crossentropy"], "mean_class_accuracy": ev["mean_class_accuracy"],
                        "per_class": ev["per_class"], "confusion": ev["confusion"]})
        matrices.append((run.plots / "confusion_val.png", ev["confusion"],
                         f"validation at the end of fit: {len(val)} images, accuracy {ev['accuracy']:.3f}, "
                         "row-normalised"))
    if test is not None:
        held = evaluate_split(model, test, classes, cfg.data.batch_size)
        metrics["test"] = {"accuracy": held["accuracy"], "crossentropy": held["crossentropy"],
                           "mean_class_accuracy": held["mean_class_accuracy"], "images": len(test),
                           "per_class": held["per_class"], "confusion": held["confusion"]}
        matrices.append((run.plots / "confusion_test.png", held["confusion"],
                         f"test, held out: {len(test)} images, accuracy {held['accuracy']:.3f}, row-normalised"))
    io_guard(lambda: write_json(run.metrics, metrics), str(run.metrics))
    for png, cm, _ in matrices:
        io_guard(lambda: write_confusion_csv(cm, classes, csv_path(png)), str(csv_path(png)))
    for png, cm, title in matrices:
        draw_or_warn(lambda: plot_confusion(np.array(cm), classes, png, normalized=True, title=title,
                                            table=csv_path(png).name), png)
    curves = run.plots / "curves.png"
    draw_or_warn(lambda: plot_curves(history, curves, title=f"{spec.name} on {len(classes)} classes",
                                     restored=restored), curves)
