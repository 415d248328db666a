"""``leafnet predict``: classify image files with a run (or a bare ``.keras`` model).

Each file is decoded once with the training decoder (TensorFlow) and resized exactly as
training does; a file that cannot be read or decoded gets a row with its error and no
class, and the others are still predicted.

``engine="onnx"`` (``--engine onnx``) runs the model under ONNX Runtime instead of Keras:
the model is exported once (``leafnet export --format onnx``'s converter) and kept in the
run's ``cache/`` under its weights' fingerprint. On CPUs it infers faster than Keras
(docs/performance.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from leafnet.data.codec_messages import quiet_decoders
from leafnet.errors import LeafnetError
from leafnet.runs import RunDir, is_run_dir, write_csv

CHUNK = 256          # files decoded and predicted together
BATCH = 64
PROGRESS_OVER = 200  # show a progress bar above this many files
ENGINES = ("keras", "onnx")


def expand_paths(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Files in input order; a folder becomes its image files, recursively, in sorted order."""
    from leafnet.data.scan import IMAGE_EXTENSIONS

    out: list[str] = []
    for item in inputs:
        p = str(item)
        if os.path.isdir(p):
            found = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
                for name in filenames:
                    if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                        found.append(os.path.join(dirpath, name))
            out.extend(sorted(found))
        else:
            out.append(p)
    return out


MODEL_SUFFIXES = (".keras", ".h5")


def _load_model_file(path: Path, trust: bool) -> tuple[Any, list[str] | None]:
    """A bare ``.keras`` / ``.h5`` model and the class names of a ``classes.json`` beside it (or None)."""
    from leafnet.trust import load_model_file

    classes = None
    if not path.is_file():
        raise LeafnetError(f"model not found: {path} (give a run folder or a .keras file)")
    if path.suffix.lower() not in MODEL_SUFFIXES or path.name.lower().endswith(".weights.h5"):
        raise LeafnetError(f"{path} is not a .keras or Keras .h5 model (give a run folder or a .keras file)")
    if (path.parent / "classes.json").is_file():
        try:
            classes = json.loads((path.parent / "classes.json").read_text(encoding="utf-8"))
        except ValueError as e:
            raise LeafnetError(f"cannot read {path.parent / 'classes.json'}: {e}") from None
    return load_model_file(path, "model", trust=trust), classes


def load_predictor(model_or_run: Any, trust: bool = False) -> tuple[Any, list[str], int]:
    """``(keras model, class names, image size)`` from a Keras model, a Run, a run folder or a
    ``.keras`` / Keras ``.h5`` model file.

    For a bare model file the class names come from a ``classes.json`` beside it, else
    they are the class indices (``"0"``, ``"1"``, ...). Files load in Keras safe mode (no
    Lambda layers, no arbitrary objects) unless ``trust``; a SavedModel is refused (loading
    one runs its graph), see :mod:`leafnet.trust`.
    """
    from leafnet.runs import Run

    classes = None
    if isinstance(model_or_run, Run):
        model_or_run = model_or_run.root
    if isinstance(model_or_run, (str, os.PathLike)):
        path = Path(model_or_run)
        if path.is_dir():
            if (path / "saved_model.pb").is_file():
                raise LeafnetError(f"{path} is a SavedModel: leafnet does not load SavedModels (loading one runs its "
                                   "graph, a program); give the run folder it was exported from, or a .keras file")
            if not is_run_dir(path):
                raise LeafnetError(f"{path} is not a leafnet run folder (no config.yaml / classes.json)")
            run = Run(path)
            if not run.dir.model.is_file():
                raise LeafnetError(f"{run.root} has no model.keras (is the run finished?)")
            classes = run.classes
            model = run.load_model(trust=trust)
        else:
            model, classes = _load_model_file(path, trust)
    else:
        model = model_or_run
    size = model.input_shape[1]
    if not size:
        raise LeafnetError("the model has no fixed input size; cannot tell how to resize the images")
    n = int(model.output_shape[-1])
    if classes is None:
        classes = [str(i) for i in range(n)]
    if len(classes) != n:
        raise LeafnetError(f"classes.json names {len(classes)} classes but the model has {n} outputs")
    return model, list(classes), int(size)


def decode_file(path: str, size: int):
    """``(uint8 [size, size, 3], None)``, or ``(None, the reason it cannot be used)``."""
    import tensorflow as tf

    from leafnet.data.pipeline import decode_image, resize_uint8
    from leafnet.data.codec_messages import clean_tf_error

    from leafnet.data.files import UnreadableFile, read_file

    try:
        contents = read_file(path)     # a FIFO or a device is refused unread, as the scan does
    except UnreadableFile as e:
        return None, e.reason
    try:
        img = decode_image(tf.constant(contents))
        if min(img.shape[:2]) <= 0:
            return None, "image has no pixels"
        return resize_uint8(img, size).numpy(), None
    except (tf.errors.OpError, ValueError) as e:
        return None, f"cannot decode: {clean_tf_error(e)}"


def _run_folder(model_or_run: Any) -> RunDir | None:
    from leafnet.runs import Run

    if isinstance(model_or_run, Run):
        return RunDir(model_or_run.root)
    if isinstance(model_or_run, (str, os.PathLike)) and Path(model_or_run).is_dir() and is_run_dir(model_or_run):
        return RunDir(model_or_run)
    return None


def _onnx_runner(model, size: int, run: RunDir | None):
    """``images -> probabilities`` under ONNX Runtime, from the model exported to ONNX once:
    into ``run``'s ``cache/`` (named by the weights' fingerprint, so a retrained model is
    exported again), or a temporary folder for a bare model."""
    import importlib.util
    import tempfile

    from leafnet.export import onnx_runner, save_onnx
    from leafnet.runs import atomic_path
    from leafnet.train.features import weights_fingerprint

    if importlib.util.find_spec("onnxruntime") is None:
        raise LeafnetError("--engine onnx needs onnxruntime and tf2onnx: pip install 'leafnet[onnx]'")
    if run is not None:
        path = run.cache / f"predict-{weights_fingerprint(model)}-{size}.onnx"
        if not path.is_file():
            with atomic_path(path) as tmp:
                save_onnx(model, size, tmp)
        return onnx_runner(path)
    with tempfile.TemporaryDirectory(prefix="leafnet-predict-") as d:
        save_onnx(model, size, Path(d) / "model.onnx")
        return onnx_runner(Path(d) / "model.onnx")     # the session holds the model: the file can go


def predict(model_or_run: Any, paths: Sequence[str | os.PathLike], top_k: int = 3,
            progress: bool | None = None, trust: bool = False, engine: str = "keras") -> list[dict]:
    """Classify image files (folders are expanded to their images, recursively, sorted).

    ``trust`` lets a model file hold Lambda layers and other code (``--trust``).
    ``engine``: ``keras``, or ``onnx`` to infer under ONNX Runtime (see the module docstring).

    Returns:
        One dict per file, in input order: ``path``, ``class``, ``confidence``, ``top``
        (``[(class, probability), ...]``, k long), ``probabilities`` (numpy ``[C]``) and
        ``error`` (``""``, or why the file could not be read; then ``class`` is ``""``).
    """
    if engine not in ENGINES:
        raise LeafnetError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    model, classes, size = load_predictor(model_or_run, trust=trust)
    files = expand_paths(paths)
    if engine == "onnx":     # the exported model leaves out the augmentation block (identity at inference)
        run_model = _onnx_runner(model, size, _run_folder(model_or_run))
    else:
        def run_model(x):
            return np.asarray(model(x, training=False))
    k = max(1, min(int(top_k), len(classes)))
    if progress is None:
        progress = len(files) > PROGRESS_OVER
    bar = None
    if progress:
        from leafnet.console import progress_bar

        bar = progress_bar(len(files), unit_name="image")
    results: list[dict] = []
    for start in range(0, len(files), CHUNK):
        chunk = files[start:start + CHUNK]
        with quiet_decoders():     # a bad file's row carries its error; libjpeg's lines would repeat it
            decoded = [decode_file(p, size) for p in chunk]
        good = [i for i, (img, _) in enumerate(decoded) if img is not None]
        probs = np.zeros((0, len(classes)))
        if good:
            x = np.stack([decoded[i][0] for i in good]).astype("float32")
            probs = np.concatenate([run_model(x[j:j + BATCH]) for j in range(0, len(x), BATCH)])
        row_of = {i: r for r, i in enumerate(good)}
        for i, p in enumerate(chunk):
            if i in row_of:
                pr = probs[row_of[i]]
                top = np.argsort(-pr, kind="stable")[:k]
                results.append({"path": p, "class": classes[top[0]], "confidence": float(pr[top[0]]),
                                "top": [(classes[t], float(pr[t])) for t in top], "probabilities": pr,
                                "error": ""})
            else:
                results.append({"path": p, "class": "", "confidence": None, "top": [], "probabilities": None,
                                "error": decoded[i][1]})
        if bar:
            bar.update(min(start + CHUNK, len(files)))
    return results


def csv_header(top_k: int) -> list[str]:
    header = ["path", "class", "confidence"]
    for i in range(2, top_k + 1):
        header += [f"top{i}_class", f"top{i}_confidence"]
    return header + ["error"]


def write_predictions(path: str | os.PathLike, results: list[dict], top_k: int) -> None:
    """The predictions CSV (atomic, spreadsheet formulas escaped)."""
    k = max([len(r["top"]) for r in results] + [0]) or max(1, top_k)   # top_k clipped to the class count
    rows = []
    for r in results:
        cells = [r["path"], r["class"], "" if r["confidence"] is None else f"{r['confidence']:.6f}"]
        for i in range(1, k):
            if i < len(r["top"]):
                cells += [r["top"][i][0], f"{r['top'][i][1]:.6f}"]
            else:
                cells += ["", ""]
        rows.append(cells + [r["error"]])
    write_csv(path, csv_header(k), rows)
