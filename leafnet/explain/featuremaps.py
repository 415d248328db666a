"""Learned filters next to the feature maps they produce, paired by output channel.

For a conv layer, output channel ``i`` is produced by filter ``i`` (``kernel[..., i]``, all input
channels; for a depthwise conv, ``depthwise_kernel[:, :, i // m, i % m]``): the picture shows
that filter beside feature map ``i`` of the layer on one image (the layer's own output, before
any BatchNorm or activation that follows it). ``early``, ``mid`` and ``deep`` name the first,
middle and last conv layer of the backbone.

A dense layer whose input is a flattened image (``Flatten`` of an ``[H, W, C]`` tensor, directly or
through an MLP head's Dropout) has one weight per pixel and unit: its weights are shown as one
``[H, W, C]`` picture per unit.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from leafnet.errors import LeafnetError
from leafnet.explain.subject import Subject, is_conv, load_subject

POSITIONS = ("early", "mid", "deep")


def conv_layers(model) -> list[str]:
    """Names of the model's conv layers (4D kernels), input to output, head excluded."""
    from leafnet.models.parts import is_head

    return [layer.name for layer in model.layers if is_conv(layer) and not is_head(layer)]


def _producer(tensor):
    """The layer whose output ``tensor`` is (None when Keras cannot tell)."""
    try:
        return tensor._keras_history[0]
    except (AttributeError, ValueError, IndexError):
        return None


def _flatten_before(layer):
    """The Flatten that feeds ``layer``, through weightless shape-preserving layers (an MLP
    head's Dropout, an Activation), which keep one input value per pixel; else None."""
    import keras

    try:
        op = _producer(layer.input)
        while op is not None and not isinstance(op, keras.layers.Flatten):
            if op.weights or tuple(op.input.shape) != tuple(op.output.shape):
                return None
            op = _producer(op.input)
    except (AttributeError, ValueError):     # a layer with several inputs
        return None
    return op


def dense_image_shape(layer) -> tuple[int, int, int] | None:
    """``(H, W, C)`` when a Dense layer's input is a flattened image, else None."""
    import keras

    if not isinstance(layer, keras.layers.Dense):
        return None
    op = _flatten_before(layer)
    if op is None:
        return None
    shape = tuple(op.input.shape[1:])
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or None in shape or shape[0] < 2 or shape[1] < 2:
        return None
    return tuple(int(s) for s in shape)


def dense_weight_images(layer) -> np.ndarray:
    """``[units, H, W, C]``: unit ``u``'s weights reshaped to its input image."""
    shape = dense_image_shape(layer)
    if shape is None:
        raise LeafnetError(f"dense layer {layer.name!r} does not take a flattened image "
                           f"(input shape {tuple(layer.input.shape)}); its weights are not pictures")
    kernel = np.asarray(layer.kernel)  # [H*W*C, units], row-major over (H, W, C) like Flatten
    return kernel.T.reshape((kernel.shape[1],) + shape)


def choose_layers(model, text: str | Sequence[str] | None) -> list[str]:
    """``"early,mid,deep"`` (default), layer names, or a mix -> conv/dense layer names (no repeats).

    Dense layers that take a flattened image are added to the default choice.
    """
    convs = conv_layers(model)
    names = [layer.name for layer in model.layers]
    if text:
        items = text.split(",") if isinstance(text, str) else list(text)
    else:
        items = list(POSITIONS) if convs else []
    out: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        if item in POSITIONS:
            if not convs:
                raise LeafnetError(f"model {model.name!r} has no conv layer; name a layer (--layers NAME)")
            name = convs[{"early": 0, "mid": (len(convs) - 1) // 2, "deep": len(convs) - 1}[item]]
        elif item in names:
            layer = model.get_layer(item)
            if not is_conv(layer) and dense_image_shape(layer) is None:
                raise LeafnetError(f"layer {item!r} is neither a conv layer nor a dense layer on a flattened "
                                   f"image; conv layers: {', '.join(convs[:12])}{' ...' if len(convs) > 12 else ''}")
            name = item
        else:
            import difflib

            close = difflib.get_close_matches(item, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise LeafnetError(f"unknown layer {item!r}{hint}; use early, mid, deep or layer names")
        if name not in out:
            out.append(name)
    if not text:
        out += [layer.name for layer in model.layers if dense_image_shape(layer) is not None and layer.name not in out]
    if not out:
        raise LeafnetError(f"model {model.name!r} has no conv layer and no dense layer on a flattened image")
    return out


def layer_filters(layer, channels: Sequence[int]) -> np.ndarray:
    """``[k, kh, kw, cin]``: the filter producing each output channel."""
    if getattr(layer, "kernel", None) is not None and len(layer.kernel.shape) == 4:
        kernel = np.asarray(layer.kernel)
        return np.stack([kernel[..., c] for c in channels])
    dk = np.asarray(layer.depthwise_kernel)  # [kh, kw, cin, multiplier]
    m = dk.shape[-1]
    return np.stack([dk[:, :, c // m, c % m][..., None] for c in channels])


def filter_pairs(model, image: np.ndarray, layer_name: str, channels: Sequence[int] | None = None,
                 max_filters: int = 16) -> dict:
    """Filters of a conv layer and the feature maps they produce on ``image``, paired by index.

    Args:
        model: a Keras model taking ``image``.
        image: ``[S, S, 3]`` float32 as the model takes it.
        layer_name: a conv layer.
        channels: output channels to return (default ``0 .. max_filters-1``).

    Returns:
        ``{"layer", "channels", "filters": [k, kh, kw, cin], "maps": [k, H, W]}``; ``filters[j]``
        is the filter of output channel ``channels[j]`` and ``maps[j]`` that channel's feature map.
    """
    import keras

    layer = model.get_layer(layer_name)
    if not is_conv(layer):
        raise LeafnetError(f"layer {layer_name!r} is not a conv layer")
    n_out = int(layer.output.shape[-1])
    channels = list(range(min(n_out, max_filters))) if channels is None else [int(c) for c in channels]
    bad = [c for c in channels if not 0 <= c < n_out]
    if bad:
        raise LeafnetError(f"channel {bad[0]} is out of range: {layer_name!r} has {n_out} output channels")
    sub = keras.Model(model.inputs[0], layer.output)
    fmap = np.asarray(sub(np.asarray(image, dtype="float32")[None], training=False))[0]
    return {"layer": layer_name, "channels": channels, "filters": layer_filters(layer, channels),
            "maps": np.stack([fmap[..., c] for c in channels])}


@dataclass
class FilterMaps:
    """What :func:`filters` computed and wrote: one entry per layer (``filter_pairs``' dict, or
    ``{"layer", "units", "weights": [k, H, W, C]}`` for a dense layer) and the files."""

    image: str
    layers: list[dict]
    files: list[Path] = field(default_factory=list)
    out: Path | None = None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def filters(run: Any, image: str | os.PathLike, layers: str | Sequence[str] | None = None,
            max_filters: int = 16, out: str | os.PathLike | None = None, plots: bool = True) -> FilterMaps:
    """The learned filters of an early, a middle and a deep conv layer beside the feature maps
    they produce on ``image`` (filter i with feature map i), plus the weights of dense layers
    that take a flattened image.

    Args:
        run: a run folder, :class:`~leafnet.runs.Run`, ``.keras`` file or Subject.
        image: one image file.
        layers: ``"early,mid,deep"`` (default) and/or layer names.
        max_filters: filters shown per layer (output channels ``0 .. max_filters-1``).
        out: output folder (default ``RUN/explain/filters``).

    Returns:
        A :class:`FilterMaps`; one PNG per layer, ``filters_<layer>.png`` / ``weights_<layer>.png``.
    """
    subject = run if isinstance(run, Subject) else load_subject(run)
    if max_filters < 1:
        raise LeafnetError(f"--max-filters must be >= 1; received {max_filters}")
    x = subject.load_images([image])
    probs = subject.predict(x)[0]
    k = int(probs.argmax())
    true = subject.true_label(image)
    row = {"true": subject.classes[true] if true is not None else "", "predicted": subject.classes[k],
           "confidence": float(probs[k])}
    result = FilterMaps(image=str(image), layers=[])
    for name in choose_layers(subject.model, layers):
        layer = subject.model.get_layer(name)
        if is_conv(layer):
            result.layers.append(filter_pairs(subject.model, x[0], name, max_filters=max_filters))
        else:
            w = dense_weight_images(layer)
            units = list(range(min(len(w), max_filters)))
            result.layers.append({"layer": name, "units": units, "weights": w[units]})
    if not plots:
        return result
    out_dir = subject.out_dir(out, "explain", "filters")
    result.out = out_dir
    from leafnet.plots import explain as P
    from leafnet.plots.explain import caption
    from leafnet.runs import io_guard

    def write():
        from leafnet.models.parts import PREDICTIONS

        for entry in result.layers:
            layer = subject.model.get_layer(entry["layer"])
            if "maps" in entry:
                f = out_dir / f"filters_{_safe(entry['layer'])}.png"
                kh, kw, cin = entry["filters"].shape[1:]
                h, w = entry["maps"].shape[1:]
                block = subject.block_of_layer(entry["layer"])
                P.plot_filters_and_maps(
                    x[0], entry["filters"], entry["maps"], entry["channels"], f,
                    title=(f"{entry['layer']}{f' ({block})' if block else ''}: {kh}x{kw}x{cin} filters, "
                           f"{layer.output.shape[-1]} channels, {h}x{w} maps\n"
                           f"filter i beside feature map i on {Path(image).name} — {caption(row)}"))
            else:
                f = out_dir / f"weights_{_safe(entry['layer'])}.png"
                labels = [f"unit {u}" + (f" ({subject.classes[u]})" if entry["layer"] == PREDICTIONS
                                         and u < len(subject.classes) else "") for u in entry["units"]]
                P.plot_weight_images(entry["weights"], entry["units"], labels, f,
                                     title=f"{entry['layer']}: weights of each unit as an image")
            result.files.append(f)

    io_guard(write, f"the filter pictures in {out_dir}")
    return result
