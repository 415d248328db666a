"""How to use an export folder: its signatures, read back from the exported files, and three
lines of Python that load and call it (what ``leafnet export`` ends by printing).

Each signature is read the way its user will load the file (``tf.saved_model.load``,
``keras.saving.load_model``, TensorFlow's TFLite interpreter, the ONNX graph), so what is
printed is what the file holds, not what the exporter meant to write.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
import zipfile
from pathlib import Path

from leafnet.errors import LeafnetError


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One input or output: its name, dtype and shape (None: any size)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def __str__(self) -> str:
        return f"{self.name} {self.dtype} {self.shape}"


@dataclasses.dataclass(frozen=True)
class Signature:
    """One way to call an exported model: ``name`` is the method or signature the snippet calls."""

    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def __str__(self) -> str:
        return f"{self.name}: {', '.join(map(str, self.inputs))} -> {', '.join(map(str, self.outputs))}"


def read_card(folder: str | os.PathLike) -> dict:
    try:
        return json.loads((Path(folder) / "model_card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LeafnetError(f"{folder} is not a leafnet export folder (no readable model_card.json: {e})") from None


def _savedmodel(path: Path) -> list[Signature]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))

    def info(specs: dict) -> tuple[TensorInfo, ...]:
        return tuple(TensorInfo(k, s.dtype.name, tuple(s.shape.as_list())) for k, s in specs.items())

    return [Signature(name, info(fn.structured_input_signature[1]), info(fn.structured_outputs))
            for name, fn in loaded.signatures.items()]


def _keras(path: Path) -> list[Signature]:
    import keras

    model = keras.saving.load_model(path, safe_mode=True)
    inputs = tuple(TensorInfo(t.name, str(t.dtype), tuple(t.shape)) for t in model.inputs)
    names = getattr(model, "output_names", None) or [model.layers[-1].name]  # a Sequential has none
    outputs = tuple(TensorInfo(name, str(t.dtype), tuple(t.shape)) for name, t in zip(names, model.outputs))
    return [Signature("predict", inputs, outputs)]


def _tflite(path: Path) -> list[Signature]:
    import numpy as np
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF's interpreter announces its own deprecation
        interpreter = tf.lite.Interpreter(model_path=str(path))

    def info(details: dict) -> tuple[TensorInfo, ...]:
        return tuple(TensorInfo(k, np.dtype(d["dtype"]).name,
                                tuple(None if n < 0 else int(n) for n in d["shape_signature"]))
                     for k, d in details.items())

    sigs = []
    for name in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(name)
        sigs.append(Signature(name, info(runner.get_input_details()), info(runner.get_output_details())))
    return sigs


def _onnx(path: Path) -> list[Signature]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def info(values) -> tuple[TensorInfo, ...]:
        out = []
        for v in values:
            t = v.type.tensor_type
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
            out.append(TensorInfo(v.name, dtype, tuple(d.dim_value if d.HasField("dim_value") else None
                                                       for d in t.shape.dim)))
        return tuple(out)

    return [Signature("run", info(graph.input), info(graph.output))]


def signatures(folder: str | os.PathLike) -> list[Signature]:
    """The signatures of the model in an export folder, read from its files."""
    folder = Path(folder)
    fmt = read_card(folder).get("format")
    if fmt == "savedmodel":
        return _savedmodel(folder)
    if fmt == "keras":
        return _keras(folder / "model.keras")
    if fmt == "tflite":
        return _tflite(folder / "model.tflite")
    if fmt == "onnx":
        return _onnx(folder / "model.onnx")
    if fmt == "submission":   # model.py wraps the SavedModel's serving_default
        default = next(s for s in _savedmodel(folder / "savedmodel") if s.name == "serving_default")
        outputs = {t.name: t for t in default.outputs}
        x = dataclasses.replace(default.inputs[0], name="X")
        return [Signature("model(folder).predict_proba", (x,), (outputs["probabilities"],)),
                Signature("model(folder).predict", (x,), (outputs["class_id"],))]
    raise LeafnetError(f"{folder}: unknown export format {fmt!r} in model_card.json")


def _needs_leafnet(keras_file: Path) -> bool:
    """Whether a ``.keras`` file names Keras objects that leafnet registers (they load only
    after ``import leafnet``)."""
    with zipfile.ZipFile(keras_file) as z:
        return '"leafnet>' in z.read("config.json").decode("utf-8")


def snippet(folder: str | os.PathLike, sigs: list[Signature] | None = None) -> str:
    """Three lines of Python that load the export and compute ``probs [N, C]`` from ``images``
    (``sigs``: the folder's :func:`signatures`, read again when not given)."""
    folder = Path(folder).resolve()
    sigs = signatures(folder) if sigs is None else sigs
    card = read_card(folder)
    fmt, size = card.get("format"), card.get("image_size")

    def q(text) -> str:  # a Python string literal
        return json.dumps(str(text), ensure_ascii=False)

    fixed = f"# images: float32 (N, {size}, {size}, 3), RGB 0..255, resized to {size}x{size}"
    if fmt == "savedmodel":
        return ("import tensorflow as tf\n"
                f"model = tf.saved_model.load({q(folder)})\n"
                'probs = model.serving_default(images)["probabilities"]   '
                "# images: float32 (N, H, W, 3), RGB 0..255, any H and W")
    if fmt == "keras":
        path = folder / "model.keras"
        first = "import keras"
        if _needs_leafnet(path):
            first = "import keras, leafnet   # leafnet registers its Keras objects"
        return (first + f"\nmodel = keras.saving.load_model({q(path)})\n"
                f"probs = model.predict(images, verbose=0)   # images: float32 (N, {size}, {size}, 3), RGB 0..255")
    if fmt == "tflite":
        sig, path = sigs[0], folder / "model.tflite"
        return ("import tensorflow as tf\n"
                f"run = tf.lite.Interpreter(model_path={q(path)}).get_signature_runner({q(sig.name)})\n"
                f"probs = run({sig.inputs[0].name}=images)[{q(sig.outputs[0].name)}]   {fixed}")
    if fmt == "onnx":
        name, path = sigs[0].inputs[0].name, folder / "model.onnx"
        return ("import onnxruntime\n"
                f'session = onnxruntime.InferenceSession({q(path)}, providers=["CPUExecutionProvider"])\n'
                f"probs = session.run(None, {{{q(name)}: images}})[0]   {fixed}")
    if fmt == "submission":
        return (f"import sys; sys.path.insert(0, {q(folder)})\n"
                "from model import model\n"
                f"probs = model({q(folder)}).predict_proba(images)   "
                "# images: float32 (N, H, W, 3), RGB 0..255; .predict(images): class ids")
    raise LeafnetError(f"{folder}: unknown export format {fmt!r} in model_card.json")


def describe(folder: str | os.PathLike) -> str:
    """What ``leafnet export`` prints after the export: the parity check, the signatures and
    the loading snippet (its last three lines, unindented so they paste as they are)."""
    card = read_card(folder)
    lines = []
    parity = card.get("parity")
    if isinstance(parity, dict) and parity.get("images"):
        lines.append(f"checked on {parity['images']} validation images: largest probability difference "
                     f"{parity['max_abs_diff']:.2g}, same class {parity['same_class']:.2%}, val accuracy "
                     f"{parity['keras_val_accuracy']:.4f} (keras) -> {parity['export_val_accuracy']:.4f} "
                     f"({card.get('format')})")
    elif isinstance(parity, str):
        lines.append(f"parity {parity}")
    sigs = signatures(folder)
    lines.append("signatures:")
    lines += [f"  {s}" for s in sigs]
    lines.append("load it in Python:")
    lines.append(snippet(folder, sigs))
    return "\n".join(lines)
