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


def _read_h5(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    import h5py

    out: list[tuple[str, list[np.ndarray]]] = []
    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:  # Keras 2 layout: ordered layer names, weight_names per layer
                for raw in f.attrs["layer_names"]:
                    name = raw.decode() if isinstance(raw, bytes) else str(raw)
                    group = f[name]
                    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
                    if names:
                        out.append((name, [np.asarray(group[n]) for n in names]))
                return out

            def visit(group, name):
                if "vars" in group and len(group["vars"]):
                    arrays = group["vars"]
                    out.append((name, [np.asarray(arrays[k]) for k in sorted(arrays, key=int)]))
                for key in group:
                    if key not in ("vars", "optimizer") and hasattr(group[key], "keys"):
                        visit(group[key], key)

            visit(f, "")
    except OSError as e:
        raise LeafnetError(f"--weights {path}: not a readable HDF5 weights file ({e})") from None
    return out


def _read_keras(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    import keras

    import leafnet.custom_objects  # noqa: F401  (registers leafnet's layers)

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # a forged or foreign file: report, never half-load
        raise LeafnetError(f"--weights {path}: cannot load this .keras file safely: {str(e).splitlines()[0][:200]}") from None
    return [(layer.name, [np.asarray(w) for w in layer.get_weights()]) for layer in model.layers if layer.weights]


def read_weights(path: str | os.PathLike) -> list[tuple[str, list[np.ndarray]]]:
    """``(layer name, arrays)`` for every layer with weights in the source, in its order."""
    p = resolve_weights_path(path)
    return _read_keras(p) if p.suffix == ".keras" else _read_h5(p)


def load_backbone_weights(model, spec: BackboneSpec, path: str | os.PathLike) -> int:
    """Copy backbone weights from ``path`` into ``model``, matched by layer name.

    Returns:
        The number of layers loaded.

    Raises:
        LeafnetError: the source lacks a backbone layer or a layer's shapes differ; the
            message names the first such layer. Nothing is assigned in that case.
    """
    from leafnet.models.classifier import backbone_layers

    source = read_weights(path)
    exact = {name: arrays for name, arrays in source}
    by_canonical: dict[str, list[list[np.ndarray]]] = {}
    for name, arrays in source:
        by_canonical.setdefault(_canonical(name), []).append(arrays)
    plan = []
    for layer in backbone_layers(model, spec):
        if not layer.weights:
            continue
        arrays = exact.get(layer.name)
        if arrays is None:
            candidates = by_canonical.get(_canonical(layer.name), [])
            arrays = candidates[0] if len(candidates) == 1 else None
        if arrays is None:
            raise LeafnetError(f"--weights {path} does not fit {spec.name}: it has no layer {layer.name!r} "
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
