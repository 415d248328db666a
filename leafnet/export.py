"""``leafnet export``: a run as a SavedModel, a ``.keras`` copy, TFLite, ONNX, or a submission folder.

The SavedModel carries its preprocessing (the training pipeline's antialiased bilinear
resize and rounding to uint8) and calls the Keras model with ``training=False`` (no
augmentation). Two signatures, both returning ``probabilities [N, C]``, ``class_id [N]``
(int64) and ``class_name [N]`` (string):

- ``serving_default``: ``images``, float32 ``[N, H, W, 3]`` 0..255, any H and W;
- ``serving_bytes``: ``images``, string ``[N]`` of encoded JPEG / PNG / BMP / GIF files.

TFLite (``model.tflite``) and ONNX (``model.onnx``) take float32 ``images [N, S, S, 3]``, 0..255,
already resized to the run's size S, and return ``probabilities [N, C]``; the model's
preprocessing is inside, its augmentation block is stripped. Both are checked against the
Keras model on the run's validation images at export time, and the result (largest
probability difference, accuracy of each, agreement of the predicted classes) goes into the
model card: that is where a quantised TFLite file's accuracy change is reported.

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
from typing import Callable

import numpy as np

from leafnet import runlock
from leafnet.errors import LeafnetError
from leafnet.runs import Run, RunDir, is_run_dir, public_mode, write_json

FORMATS = ("savedmodel", "keras", "tflite", "onnx", "submission")
QUANTIZATIONS = ("none", "float16", "dynamic")
PARITY_IMAGES = 2000  # at most this many validation images are compared at export time

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


def inference_model(model):
    """The classifier without its augmentation block: input = the augmentation's output
    (same shape, 0..255 images), everything after it unchanged, weights shared."""
    import keras

    from leafnet.models.parts import augmentation_of

    aug = augmentation_of(model)
    if aug is None:
        return model
    return keras.Model(aug.output, model.output, name=f"{model.name}_inference")


def _image_spec(size: int):
    import tensorflow as tf

    return [tf.TensorSpec([None, size, size, 3], tf.float32, name="images")]


def save_tflite(model, size: int, path: str | os.PathLike, quantize: str = "none") -> None:
    """``model.tflite`` through Keras' LiteRT exporter; ``quantize``: none, float16 (weights
    stored as float16) or dynamic (dynamic-range int8 weights)."""
    import tensorflow as tf

    options = {}
    if quantize != "none":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    inference_model(model).export(str(path), format="litert", input_signature=_image_spec(size),
                                  verbose=False, **options)


def save_onnx(model, size: int, path: str | os.PathLike) -> None:
    """``model.onnx`` through Keras' own ``model.export(format="onnx")`` (tf2onnx inside)."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("onnx", "tf2onnx")):
        raise LeafnetError("ONNX export needs tf2onnx and onnx: pip install 'leafnet[onnx]'")
    import warnings

    with warnings.catch_warnings(), _normalization_as_constants(model):
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object
        inference_model(model).export(str(path), format="onnx", input_signature=_image_spec(size), verbose=False)


@contextlib.contextmanager
def _normalization_as_constants(model):
    """Hold every ``Normalization`` layer's mean and variance as NumPy arrays while exporting.

    Keras keeps them as eager tensors (computed from its weights in ``finalize_state``); a
    traced function captures those as extra inputs, and tf2onnx leaves them in the ONNX
    graph as inputs nobody feeds (every EfficientNet B0-B7 has such a layer: ONNX Runtime
    refused the file with "Required inputs ... normalization/Sub/y:0 ... are missing"). As
    NumPy arrays they become constants of the graph.
    """
    import keras

    saved = []
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Normalization) and getattr(layer, "mean", None) is not None:
            saved.append((layer, layer.mean, layer.variance))
            layer.mean = np.asarray(keras.ops.convert_to_numpy(layer.mean))
            layer.variance = np.asarray(keras.ops.convert_to_numpy(layer.variance))
    try:
        yield
    finally:
        for layer, mean, variance in saved:
            layer.mean, layer.variance = mean, variance


def tflite_runner(path: str | os.PathLike):
    """A function ``images -> probabilities`` running a ``.tflite`` file (LiteRT's interpreter
    when ``ai-edge-litert`` is installed, else TensorFlow's)."""
    import warnings

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF's interpreter announces its own deprecation
        interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    output = runner.get_output_details()

    def run(images):
        out = runner(images=np.asarray(images, dtype=np.float32))
        return out[next(iter(output))] if len(output) == 1 else out

    return run


def onnx_runner(path: str | os.PathLike):
    """A function ``images -> probabilities`` running a ``.onnx`` file under onnxruntime."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # ONNX Runtime's default counts the machine's physical cores; a container or a taskset
    # may give this process fewer (or, with SMT, more usable) ones.
    options.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: np.asarray(images, dtype=np.float32)})[0]


def check_parity(run: RunDir, model, size: int, runner, batch_size: int = 64,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Compare an exported model (``runner``: images -> probabilities) with the Keras model on
    the run's validation images (at most PARITY_IMAGES); ``progress`` gets one line first."""
    from leafnet.data.pipeline import ImageSet
    from leafnet.data.prepare import read_split
    from leafnet.data.verify import check_rows

    check_rows(run)
    paths, labels, _ = read_split(run).subset(val=True)
    paths, labels = paths[:PARITY_IMAGES], np.asarray(labels[:PARITY_IMAGES], dtype=np.int64)
    if not paths:
        return {"images": 0}
    if progress:
        progress(f"checking parity with the Keras model on {len(paths)} validation images")
    images = ImageSet(paths, labels, len(run.read_classes()), size)
    diff, agree, hits_keras, hits_export = 0.0, 0, 0, 0
    for (x, y), start in zip(images.dataset(batch_size), range(0, len(paths), batch_size)):
        x = x.numpy()
        ref = np.asarray(model.predict_on_batch(x), dtype=np.float64)
        got = np.asarray(runner(x), dtype=np.float64)
        truth = labels[start:start + len(x)]
        diff = max(diff, float(np.abs(ref - got).max()))
        agree += int((ref.argmax(1) == got.argmax(1)).sum())
        hits_keras += int((ref.argmax(1) == truth).sum())
        hits_export += int((got.argmax(1) == truth).sum())
    n = len(paths)
    return {"images": n, "max_abs_diff": diff, "same_class": agree / n,
            "keras_val_accuracy": hits_keras / n, "export_val_accuracy": hits_export / n,
            "accuracy_change": (hits_export - hits_keras) / n}


def model_card(run: RunDir, fmt: str, classes: list[str], size: int) -> dict:
    import keras
    import tensorflow as tf

    from leafnet.version import __version__

    def read_json(p):
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    cfg = run.read_config()
    metrics = read_json(run.metrics)
    report = read_json(run.data_report)
    split_counts = {}
    for r in Run(run.root).split_rows():
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
        "versions": {"leafnet": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
    }


def export(run_dir: str | os.PathLike, format: str = "savedmodel", out: str | os.PathLike | None = None,
           quantize: str = "none", progress: Callable[[str], None] | None = None) -> Path:
    """Export a finished run; return the export folder (default ``RUN/export/<format>``).

    Args:
        format: savedmodel, keras, tflite, onnx or submission.
        quantize: TFLite only: none, float16 or dynamic (dynamic-range int8 weights).
        progress: called with one line per step (``print`` shows them); None: silent.

    An existing folder at ``out`` is replaced only once the new export is complete.
    """
    if format not in FORMATS:
        raise LeafnetError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise LeafnetError(f"unknown quantization {quantize!r}; choose one of: {', '.join(QUANTIZATIONS)}")
    if quantize != "none" and format != "tflite":
        raise LeafnetError(f"--quantize applies to --format tflite only (not {format})")
    run = RunDir(run_dir)
    if not is_run_dir(run.root):
        raise LeafnetError(f"{run.root} is not a leafnet run folder (no config.yaml / classes.json)")
    if not run.model.is_file():
        raise LeafnetError(f"{run.root} has no model.keras (is the run finished?)")
    # Held while exporting: a fit resuming this run, or another export, must not write it now; and
    # holding it, every temporary in the folder is a killed writer's (an export's SavedModel folder).
    # A read-only run folder (exported with --out elsewhere) cannot be locked, nor written.
    writable = os.access(run.root, os.W_OK)
    with runlock.hold(run.root, hint="wait for it to finish, then export again") if writable \
            else contextlib.nullcontext():
        if writable:
            run.clean_temporaries()
        classes = run.read_classes()
        say = progress or (lambda line: None)
        run.read_config()                # a hand-edited config is refused before anything is loaded
        say(f"loading {run.model}")
        model = Run(run.root).load_model()  # also for keras: a damaged file is refused, not copied
        size = Run(run.root).image_size(model)
        target = Path(out) if out else run.root / "export" / format
        target = target.resolve()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        except OSError as e:
            raise LeafnetError(f"could not write the export to {target}: {e.strerror or e}") from None
        try:
            card = model_card(run, format, classes, size)
            if format == "keras":
                say(f"copying {run.model}")
                shutil.copy2(run.model, tmp / "model.keras")
            elif format in ("savedmodel", "submission"):
                say("building the SavedModel (signatures serving_default, serving_bytes) and writing it")
                save_savedmodel(model, classes, size, tmp if format == "savedmodel" else tmp / "savedmodel")
                if format == "submission":
                    say("writing model.py")
                    (tmp / "model.py").write_text(SUBMISSION_MODEL_PY, encoding="utf-8")
            elif format == "tflite":
                say(f"converting to TFLite (quantization: {quantize}) and writing model.tflite")
                save_tflite(model, size, tmp / "model.tflite", quantize)
                card.update(file="model.tflite", quantization=quantize,
                            input=f"images: float32 [N, {size}, {size}, 3], RGB 0..255, resized to {size}x{size} "
                                  "(antialiased bilinear) by the caller", output="probabilities [N, C]",
                            parity=check_parity(run, model, size, tflite_runner(tmp / "model.tflite"), progress=say))
            else:
                say("converting to ONNX (tf2onnx) and writing model.onnx")
                save_onnx(model, size, tmp / "model.onnx")
                card.update(file="model.onnx", input=f"images: float32 [N, {size}, {size}, 3], RGB 0..255, resized to "
                            f"{size}x{size} (antialiased bilinear) by the caller", output="probabilities [N, C]")
                try:
                    card["parity"] = check_parity(run, model, size, onnx_runner(tmp / "model.onnx"), progress=say)
                except ImportError:
                    card["parity"] = "not checked: onnxruntime is not installed"
            say("writing model_card.json and classes.json")
            write_json(tmp / "classes.json", classes)
            write_json(tmp / "model_card.json", card)
            public_mode(tmp, directory=True)
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
