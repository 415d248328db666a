"""Load backbone weights from a file or a run folder, by layer name, all or nothing.

Accepted sources: a leafnet run folder (a pretext run's ``backbone.keras``, else its
``model.keras``, else ``best.keras``), a ``.keras`` model or backbone, a Keras 3
``.weights.h5`` file, or a Keras 2 style ``.h5`` weights file (such as the
``*_notop.h5`` files keras.applications downloads). Only backbone layers are taken;
the source's head is dropped. Every layer is checked before any is assigned, so a
mismatch leaves the model untouched. ``hub:PRESET`` weights are loaded by keras-hub
while the backbone is built (:mod:`leafnet.models.hub`).

A ``backbone.keras`` (:func:`save_backbone`) is the backbone alone, input ``image``
(0..255 RGB, its preprocessing inside) to its last feature map, with a ``leafnet.json``
entry in the archive that records the registry name and image size
(:func:`read_backbone_info`).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from leafnet.errors import LeafnetError
from leafnet.models import hub
from leafnet.models.parts import INPUT, augmentation_of, backbone_layers
from leafnet.models.registry import BackboneSpec

_AUTO_SUFFIX = re.compile(r"_\d+$")
BACKBONE_FILE = "backbone.keras"
INFO_ENTRY = "leafnet.json"  # inside a backbone.keras archive
BACKBONE_FORMAT = "leafnet-backbone"


def _canonical(name: str) -> str:
    """Keras numbers auto-named layers per process (``normalization_3``): drop the counter."""
    return _AUTO_SUFFIX.sub("", name)


def resolve_weights_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        for name in (BACKBONE_FILE, "model.keras", "best.keras"):
            if (p / name).is_file():
                return p / name
        raise LeafnetError(f"--weights {p}: folder has no model.keras, best.keras or backbone.keras")
    if not p.is_file():
        raise LeafnetError(f"--weights {p}: no such file or folder; use imagenet, none, or a path to "
                           ".keras / .weights.h5 / a run folder")
    if not (p.name.endswith(".keras") or p.name.endswith(".h5")):
        raise LeafnetError(f"--weights {p}: unsupported file type; expected .keras, .weights.h5 or .h5")
    return p


class H5Arrays:
    """The arrays of one layer in a weights file, by HDF5 dataset name, read only on demand:
    their declared shapes (HDF5 metadata) are compared with the model's before any array is
    read, so a few-KB file declaring a 200000x200000 dataset is refused without allocating it."""

    def __init__(self, path: Path, names: list[str], shapes: list[tuple[int, ...]]):
        self.path, self.names, self.shapes = path, names, shapes

    def read(self) -> list[np.ndarray]:
        import h5py

        try:
            with h5py.File(self.path, "r") as f:
                return [np.asarray(f[n]) for n in self.names]
        except OSError as e:
            raise LeafnetError(f"--weights {self.path}: not a readable HDF5 weights file ({e})") from None


def _datasets(group, names, path: Path, where: str) -> H5Arrays:
    import h5py

    found = []
    for n in names:
        d = group.get(n)
        if not isinstance(d, h5py.Dataset):
            raise LeafnetError(f"--weights {path}: {where} names {n!r}, which is not a dataset in the file")
        found.append(d)
    return H5Arrays(path, [d.name for d in found], [tuple(d.shape) for d in found])


def _read_h5(path: Path) -> tuple[str, dict[str, H5Arrays]]:
    """Index a weights file (no array read): ``("keras2", {layer name: arrays})`` for the
    Keras 2 layout (the files keras.applications downloads), ``("keras3", {save key:
    arrays})`` for Keras 3's ``.weights.h5``, whose keys are per-class positions
    (``conv2d_3``), not layer names."""
    import h5py

    out: dict[str, H5Arrays] = {}
    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:
                for raw in f.attrs["layer_names"]:
                    name = raw.decode() if isinstance(raw, bytes) else str(raw)
                    group = f[name]
                    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
                    if names:
                        out[name] = _datasets(group, names, path, f"layer {name!r}")
                return "keras2", out
            layers = f.get("layers")
            if layers is None:
                raise LeafnetError(f"--weights {path}: not a Keras weights file (no 'layers' group)")
            for key in layers:
                group = layers[key]
                if "vars" in group and len(group["vars"]):
                    out[key] = _datasets(group["vars"], sorted(group["vars"], key=int), path, f"layer {key!r}")
            return "keras3", out
    except (OSError, KeyError, ValueError) as e:
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
    from leafnet.trust import load_model_file

    try:  # a model built from a keras-hub preset may hold keras-hub layers (MobileNet's blocks)
        import keras_hub  # noqa: F401
    except ImportError:
        pass
    # Keras safe mode unless --trust: a forged or foreign file is refused, never half-loaded
    model = load_model_file(path, "--weights", compile=False)
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


def read_weights(path: str | os.PathLike) -> tuple[str, dict[str, list[np.ndarray] | H5Arrays]]:
    """``(kind, {key: arrays})`` for every layer with weights in the source; ``kind`` says
    whether keys are layer names (``names``, ``keras2``) or Keras 3 save keys (``keras3``).
    A weights file's arrays are :class:`H5Arrays`, read by :func:`load_backbone_weights`
    once their shapes fit."""
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
    if hub.is_hub(str(path)):
        return hub.weighted_layers(model, spec)  # keras-hub loaded them while building
    kind, source = read_weights(path)
    held = _source_backbone(path)
    held = f"; the file holds a {held} backbone" if held and held != spec.name else ""
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
                               f"(first missing layer; is it from another backbone?{held})")
        want = [tuple(w.shape) for w in layer.weights]
        got = arrays.shapes if isinstance(arrays, H5Arrays) else [tuple(a.shape) for a in arrays]
        if isinstance(arrays, H5Arrays) and len(want) == len(got) and want != got:
            i = next(i for i, (w, g) in enumerate(zip(want, got)) if w != g)
            raise LeafnetError(f"--weights {path} does not fit {spec.name}: dataset {arrays.names[i]} declares shape "
                               f"{got[i]} but layer {layer.name!r} needs {want[i]} (first mismatching layer{held})")
        if want != got:
            raise LeafnetError(f"--weights {path} does not fit {spec.name}: layer {layer.name!r} has shapes {got} "
                               f"in the file but {want} in the model (first mismatching layer{held})")
        plan.append((layer, arrays))
    if not plan:
        raise LeafnetError(f"--weights {path}: no backbone layer of {spec.name} found in the file")
    plan = [(layer, arrays.read() if isinstance(arrays, H5Arrays) else arrays) for layer, arrays in plan]
    for layer, arrays in plan:
        layer.set_weights(arrays)
    return len(plan)


# ------------------------------------------------------------------ weights values, backbone files

def canonical_weights(weights: str) -> str:
    """``model.weights`` as stored in a run's config: imagenet / none as they are, ``hub:PRESET``
    with a local preset folder made absolute, a path made absolute."""
    if weights in ("imagenet", "none"):
        return weights
    if hub.is_hub(weights):
        return hub.canonical(weights)
    return str(Path(weights).expanduser().resolve())


def extract_backbone(model, spec: BackboneSpec, image_size: int):
    """The backbone of a leafnet classifier as a model of its own: input ``image`` (0..255
    RGB) -> the last backbone layer, sharing the classifier's layers (augmentation and head
    left out)."""
    import keras

    layers = backbone_layers(model, spec)
    if not layers:
        raise LeafnetError(f"model {model.name!r} has no backbone layers")
    aug = augmentation_of(model)
    start = aug.output if aug is not None else model.inputs[0]
    # Keras 3 builds a model from an intermediate tensor; cloning it onto a new input named
    # "image" re-applies the same layers (clone_function returns them as they are).
    inner = keras.Model(start, layers[-1].output)
    image = keras.Input((image_size, image_size, 3), name=INPUT)
    out = keras.models.clone_model(inner, input_tensors=image, clone_function=lambda layer: layer).output
    return keras.Model(image, out, name=model.name + "_backbone")


def save_backbone(model, spec: BackboneSpec, image_size: int, path: str | os.PathLike,
                  info: dict[str, Any] | None = None):
    """Write the backbone of ``model`` to ``path`` (a ``.keras`` file, atomically) with its
    registry name and image size recorded; ``--weights PATH`` accepts the file.

    Args:
        model: a leafnet classifier.
        spec: its backbone spec.
        image_size: the input size it was trained at.
        path: the file to write, e.g. ``RUN/backbone.keras``.
        info: extra facts to record (e.g. the pretext task).

    Returns:
        The backbone model that was saved.
    """
    from leafnet.runs import atomic_path

    backbone = extract_backbone(model, spec, image_size)
    meta = {"format": BACKBONE_FORMAT, "version": 1, "backbone": spec.name, "image_size": int(image_size),
            "blocks": spec.block_names, "layers": [l.name for l in backbone.layers if l.weights], **(info or {})}
    with atomic_path(path) as tmp:
        backbone.save(tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(INFO_ENTRY, json.dumps(meta, indent=2))
    return backbone


def read_backbone_info(path: str | os.PathLike) -> dict[str, Any] | None:
    """What :func:`save_backbone` recorded in a ``backbone.keras`` (None for other files)."""
    try:
        with zipfile.ZipFile(path) as z:
            if INFO_ENTRY not in z.namelist():
                return None
            meta = json.loads(z.read(INFO_ENTRY))
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == BACKBONE_FORMAT else None


def load_backbone_file(path: str | os.PathLike):
    """``(backbone model, info)`` of a ``backbone.keras`` (or a run folder holding one), loaded in
    Keras safe mode unless ``--trust`` (:mod:`leafnet.trust`)."""
    from leafnet.trust import load_model_file

    p = resolve_weights_path(path)
    info = read_backbone_info(p)
    if info is None:
        raise LeafnetError(f"{p} is not a leafnet backbone file (no {INFO_ENTRY} inside; write one with a pretext run)")
    return load_model_file(p, "backbone", compile=False), info


def _source_backbone(path: str | os.PathLike) -> str | None:
    """The backbone a weights source says it holds (a backbone.keras or a run folder), if any."""
    p = Path(path)
    try:
        if p.is_dir() and (p / "config.yaml").is_file() and not (p / BACKBONE_FILE).is_file():
            import yaml

            cfg = yaml.safe_load((p / "config.yaml").read_text(encoding="utf-8")) or {}
            return (cfg.get("model") or {}).get("backbone")
        info = read_backbone_info(resolve_weights_path(p))
    except (OSError, ValueError, LeafnetError):
        return None
    return info.get("backbone") if info else None
