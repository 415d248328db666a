"""Load backbone weights from a file or a run folder, by layer name, all or nothing.

Accepted sources: a leafnet run folder (its ``model.keras``, else ``best.keras``), a
``.keras`` model, a Keras 3 ``.weights.h5`` file, or a Keras 2 style ``.h5`` weights
file (such as the ``*_notop.h5`` files keras.applications downloads). Only backbone
layers are taken; the source's head is dropped. Every layer is checked before any is
assigned, so a mismatch leaves the model untouched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from leafnet.errors import LeafnetError
from leafnet.models.registry import BackboneSpec

_AUTO_SUFFIX = re.compile(r"_\d+$")


def _canonical(name: str) -> str:
    """Keras numbers auto-named layers per process (``normalization_3``): drop the counter."""
    return _AUTO_SUFFIX.sub("", name)


def resolve_weights_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        for name in ("model.keras", "best.keras", "backbone.keras"):
            if (p / name).is_file():
                return p / name
        raise LeafnetError(f"--weights {p}: folder has no model.keras, best.keras or backbone.keras")
    if not p.is_file():
        raise LeafnetError(f"--weights {p}: no such file or folder; use imagenet, none, or a path to "
                           ".keras / .weights.h5 / a run folder")
    if not (p.name.endswith(".keras") or p.name.endswith(".h5")):
        raise LeafnetError(f"--weights {p}: unsupported file type; expected .keras, .weights.h5 or .h5")
    return p


def _read_h5(path: Path) -> tuple[str, dict[str, list[np.ndarray]]]:
    """Read a weights file: ``("keras2", {layer name: arrays})`` for the Keras 2 layout (the
    files keras.applications downloads), ``("keras3", {save key: arrays})`` for Keras 3's
    ``.weights.h5``, whose keys are per-class positions (``conv2d_3``), not layer names."""
    import h5py

    out: dict[str, list[np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:
                for raw in f.attrs["layer_names"]:
                    name = raw.decode() if isinstance(raw, bytes) else str(raw)
                    group = f[name]
                    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
                    if names:
                        out[name] = [np.asarray(group[n]) for n in names]
                return "keras2", out
            layers = f.get("layers")
            if layers is None:
                raise LeafnetError(f"--weights {path}: not a Keras weights file (no 'layers' group)")
            for key in layers:
                group = layers[key]
                if "vars" in group and len(group["vars"]):
                    out[key] = [np.asarray(group["vars"][k]) for k in sorted(group["vars"], key=int)]
            return "keras3", out
    except OSError as e:
        raise LeafnetError(f"--weights {path}: not a readable HDF5 weights file ({e})") from None


def keras_save_keys(model) -> dict[str, str]:
    """Layer name -> the key Keras 3's ``save_weights`` files it under: the snake-case class
    name numbered per class in layer order (keras.saving, ``_save_container_state``)."""
    from keras.src.utils import naming

    used: dict[str, int] = {}
    keys = {}
    for layer in model.layers:
        base = naming.to_snake_case(layer.__class__.__name__)
        if base in used:
            used[base] += 1
            keys[layer.name] = f"{base}_{used[base]}"
        else:
            used[base] = 0
            keys[layer.name] = base
    return keys


def _read_keras(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    import keras

    import leafnet.custom_objects  # noqa: F401  (registers leafnet's layers)

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # a forged or foreign file: report, never half-load
        raise LeafnetError(f"--weights {path}: cannot load this .keras file safely: {str(e).splitlines()[0][:200]}") from None
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


def read_weights(path: str | os.PathLike) -> tuple[str, dict[str, list[np.ndarray]]]:
    """``(kind, {key: arrays})`` for every layer with weights in the source; ``kind`` says
    whether keys are layer names (``names``, ``keras2``) or Keras 3 save keys (``keras3``)."""
    p = resolve_weights_path(path)
    return ("names", _read_keras(p)) if p.suffix == ".keras" else _read_h5(p)


def load_backbone_weights(model, spec: BackboneSpec, path: str | os.PathLike) -> int:
    """Copy backbone weights from ``path`` into ``model``, matched by layer name.

    Returns:
        The number of layers loaded.

    Raises:
        LeafnetError: the source lacks a backbone layer or a layer's shapes differ; the
            message names the first such layer. Nothing is assigned in that case.
    """
    from leafnet.models.classifier import backbone_layers

    kind, source = read_weights(path)
    save_keys = keras_save_keys(model) if kind == "keras3" else {}
    by_canonical: dict[str, list[list[np.ndarray]]] = {}
    for name, arrays in source.items():
        by_canonical.setdefault(_canonical(name), []).append(arrays)
    plan = []
    for layer in backbone_layers(model, spec):
        if not layer.weights:
            continue
        arrays = source.get(save_keys.get(layer.name, layer.name))
        if arrays is None and kind != "keras3":
            candidates = by_canonical.get(_canonical(layer.name), [])
            arrays = candidates[0] if len(candidates) == 1 else None
        if arrays is None:
            raise LeafnetError(f"--weights {path} does not fit {spec.name}: it has no layer {layer.name!r}"
                               + (f" (saved as {save_keys[layer.name]!r})" if save_keys else "") + " "
                               "(first missing layer; is it from another backbone?)")
        want = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if want != got:
            raise LeafnetError(f"--weights {path} does not fit {spec.name}: layer {layer.name!r} has shapes {got} "
                               f"in the file but {want} in the model (first mismatching layer)")
        plan.append((layer, arrays))
    if not plan:
        raise LeafnetError(f"--weights {path}: no backbone layer of {spec.name} found in the file")
    for layer, arrays in plan:
        layer.set_weights(arrays)
    return len(plan)
