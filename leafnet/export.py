"""``leafnet export``: a run as a SavedModel, a ``.keras`` copy, or a self-contained submission folder.

The SavedModel carries its preprocessing (the training pipeline's antialiased bilinear
resize and rounding to uint8) and calls the Keras model with ``training=False`` (no
augmentation). Two signatures, both returning ``probabilities [N, C]``, ``class_id [N]``
(int64) and ``class_name [N]`` (string):

- ``serving_default``: ``images``, float32 ``[N, H, W, 3]`` 0..255, any H and W;
- ``serving_bytes``: ``images``, string ``[N]`` of encoded JPEG / PNG / BMP / GIF files.

Every export folder holds ``model_card.json``; the folder is built under a temporary name
beside the target and renamed into place at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from leafnet.errors import LeafnetError
from leafnet.runs import RunDir, is_run_dir, write_json

FORMATS = ("savedmodel", "keras", "submission")

SUBMISSION_MODEL_PY = '''"""A leafnet classifier, exported with `leafnet export --format submission`.

Needs TensorFlow and NumPy only. Usage:

    from model import model
    m = model("path/to/this/folder")
    class_ids = m.predict(X)      # X: float array [N, H, W, 3], RGB 0..255
"""

import json
import os

import numpy as np
import tensorflow as tf


class model:
    def __init__(self, path=None):
        path = path or os.path.dirname(os.path.abspath(__file__))
        saved = path if os.path.isfile(os.path.join(path, "saved_model.pb")) else os.path.join(path, "savedmodel")
        self._model = tf.saved_model.load(saved)
        self._serve = self._model.signatures["serving_default"]
        classes = os.path.join(path, "classes.json")
        self.classes = json.load(open(classes, encoding="utf-8")) if os.path.isfile(classes) else None

    def predict_proba(self, X, batch_size=64):
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 3:
            X = X[None]
        out = [self._serve(images=tf.constant(X[i:i + batch_size]))["probabilities"].numpy()
               for i in range(0, len(X), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def predict(self, X):
        """Class indices (int64 numpy array [N]) of a batch of RGB images, 0..255, NHWC."""
        return self.predict_proba(X).argmax(axis=1).astype(np.int64)
'''


def _serving_module(model, classes: list[str], size: int):
    import tensorflow as tf

    from leafnet.data.pipeline import decode_image

    def resize(images):  # float or uint8 [N, H, W, 3] -> float32 [N, S, S, 3], as the training pipeline
        out = tf.image.resize(tf.cast(images, tf.float32), (size, size), method="bilinear", antialias=True)
        return tf.cast(tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8), tf.float32)

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            # every state the traced call touches (seed generators of the augmentation layers included)
            self.model_variables = [getattr(v, "value", v) for v in model.variables]
            self.class_names = tf.constant(classes)

        def _outputs(self, x):
            probs = tf.cast(self.model(x, training=False), tf.float32)
            class_id = tf.argmax(probs, axis=-1, output_type=tf.int64)
            return {"probabilities": probs, "class_id": class_id,
                    "class_name": tf.gather(self.class_names, class_id)}

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        def serving_default(self, images):
            return self._outputs(resize(images))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def serving_bytes(self, images):
            def one(contents):
                return resize(decode_image(contents)[None])[0]

            x = tf.map_fn(one, images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
            return self._outputs(x)

    return Serving()


def save_savedmodel(model, classes: list[str], size: int, path: str | os.PathLike) -> None:
    import tensorflow as tf

    module = _serving_module(model, classes, size)
    sigs = {"serving_default": module.serving_default.get_concrete_function(),
            "serving_bytes": module.serving_bytes.get_concrete_function()}
    tf.saved_model.save(module, str(path), signatures=sigs)


def model_card(run: RunDir, fmt: str, classes: list[str], size: int) -> dict:
    import keras
    import tensorflow as tf
    import yaml

    import leafnet

    def read_json(p):
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    cfg = {}
    with contextlib.suppress(OSError, ValueError):
        cfg = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    metrics = read_json(run.metrics)
    report = read_json(run.data_report)
    split_counts = {}
    if run.split.is_file():
        from leafnet.runs import read_csv

        for r in read_csv(run.split):
            split_counts[r["subset"]] = split_counts.get(r["subset"], 0) + 1
    return {
        "format": fmt,
        "run": str(run.root),
        "backbone": metrics.get("backbone") or cfg.get("model", {}).get("backbone"),
        "image_size": size,
        "input": "RGB, 0..255 (any size for the SavedModel: resized inside)",
        "classes": classes,
        "training_data": {"images_per_class": report.get("classes"), "used": report.get("used"),
                          "skipped": len(report.get("skipped") or []), "split": split_counts},
        "val_metrics": {k: metrics.get(k) for k in ("val_accuracy", "val_loss", "mean_class_accuracy",
                                                      "val_images", "train_images", "epochs")},
        "versions": {"leafnet": leafnet.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
    }


def export(run_dir: str | os.PathLike, format: str = "savedmodel", out: str | os.PathLike | None = None) -> Path:
    """Export a finished run; return the export folder (default ``RUN/export/<format>``).

    An existing folder at ``out`` is replaced only once the new export is complete.
    """
    if format not in FORMATS:
        raise LeafnetError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
    run = RunDir(run_dir)
    if not is_run_dir(run.root):
        raise LeafnetError(f"{run.root} is not a leafnet run folder (no config.yaml / classes.json)")
    if not run.model.is_file():
        raise LeafnetError(f"{run.root} has no model.keras (is the run finished?)")
    from leafnet.evaluate import load_run_model, run_image_size

    classes = run.read_classes()
    target = Path(out) if out else run.root / "export" / format
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        model = None
        if format in ("savedmodel", "submission"):
            model = load_run_model(run)
        size = run_image_size(run, model)
        if format == "keras":
            shutil.copy2(run.model, tmp / "model.keras")
        elif format == "savedmodel":
            save_savedmodel(model, classes, size, tmp)
        else:
            save_savedmodel(model, classes, size, tmp / "savedmodel")
            (tmp / "model.py").write_text(SUBMISSION_MODEL_PY, encoding="utf-8")
        write_json(tmp / "classes.json", classes)
        write_json(tmp / "model_card.json", model_card(run, format, classes, size))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LeafnetError(f"could not write the export to {target}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
