"""The model being explained: the Keras model, its classes, its backbone's blocks, its images.

Every explanation command starts from a :class:`Subject`, loaded from a run folder, a ``.keras``
file or an in-memory model. It knows how to name layers (``NAME`` or ``block:N``), which layer
Grad-CAM uses by default, and the true class of an image when the run's split knows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from leafnet.errors import LeafnetError
from leafnet.explain.clone import clone_model


@dataclass
class Subject:
    """A classifier with what the explanations need to know about it.

    Attributes:
        model: the Keras model (float32 RGB 0..255 in, probabilities out).
        classes: class names in label order.
        size: the square input size.
        spec: the backbone's registry entry (None for a model the registry cannot name).
        root: the run folder, or None for a bare model.
        labels: absolute image path -> class index, from the run's ``split.csv``.
        val: ``(path, class index)`` of the run's validation images, in split order.
    """

    model: Any
    classes: list[str]
    size: int
    spec: Any = None
    root: Path | None = None
    labels: dict[str, int] = field(default_factory=dict)
    val: list[tuple[str, int]] = field(default_factory=list)
    _logits: Any = field(default=None, repr=False)
    _guided: Any = field(default=None, repr=False)

    def out_dir(self, out: str | os.PathLike | None, *default: str) -> Path:
        """``out``, else ``RUN/<default...>``; a bare model needs ``out``."""
        if out is not None:
            return Path(out)
        if self.root is None:
            raise LeafnetError("this model has no run folder to write into; give --out DIR (out=...)")
        return self.root.joinpath(*default)

    @property
    def logit_model(self):
        """A clone of the model whose ``predictions`` layer is linear (the class scores before
        softmax), which is what gradient explanations should differentiate (tf-keras-vis'
        ``ReplaceToLinear``, done here without touching the loaded model)."""
        if self._logits is None:
            import keras

            from leafnet.models.parts import PREDICTIONS

            self._logits = clone_model(self.model)
            for layer in self._logits.layers:
                if layer.name == PREDICTIONS or layer is self._logits.layers[-1]:
                    layer.activation = keras.activations.linear
        return self._logits

    @property
    def guided_logit_model(self):
        """:attr:`logit_model` with its ReLU-like activations guided (:mod:`leafnet.explain.guided`),
        built on first use."""
        if self._guided is None:
            from leafnet.explain.guided import guided_model

            self._guided = guided_model(self.logit_model)[0]
        return self._guided

    def class_index(self, name: str) -> int:
        if name in self.classes:
            return self.classes.index(name)
        import difflib

        close = difflib.get_close_matches(name, self.classes, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise LeafnetError(f"unknown class {name!r}{hint}; classes: {', '.join(self.classes)}")

    def true_label(self, path: str | os.PathLike) -> int | None:
        """The class of an image: from the run's split, else from the nearest folder named
        like a class (``.../oak/img.jpg``), else None."""
        p = Path(path).resolve()
        if str(p) in self.labels:
            return self.labels[str(p)]
        for parent in p.parents:
            if parent.name in self.classes:
                return self.classes.index(parent.name)
        return None

    # ------------------------------------------------------------------ layers

    def backbone_layers(self) -> list:
        """Layers between the input (and augmentation) and the head, in order."""
        from leafnet.models.parts import backbone_layers

        return backbone_layers(self.model)

    def spatial_layers(self) -> list:
        """Backbone layers with a 4D output ``[N, H, W, C]``."""
        return [layer for layer in self.backbone_layers() if _rank(layer) == 4]

    def default_cam_layer(self) -> str:
        """The last backbone layer with a 4D output larger than 1 x 1.

        A 1 x 1 map (e.g. a 128 px backbone fed 32 px images) carries no location, and
        Grad-CAM on it is a constant picture; the last map with a spatial extent is then the
        deepest one that can say *where*.
        """
        layers = self.spatial_layers()
        if not layers:
            raise LeafnetError(f"model {self.model.name!r} has no layer with a 4D output to explain at")
        for layer in reversed(layers):
            h, w = layer.output.shape[1:3]
            if (h or 2) > 1 or (w or 2) > 1:
                return layer.name
        return layers[-1].name

    def block_layers(self, needs: str = "map") -> dict[str, str]:
        """Block name -> the last layer of that block that has what ``needs`` asks for
        (see :data:`NEEDS`): its 4D output map, or its conv kernel."""
        if self.spec is None:
            raise LeafnetError(f"cannot map layers to blocks: the registry has no backbone for model "
                               f"{self.model.name!r}; name a layer instead (--layer NAME)")
        has = _NEEDS_TEST[_check_needs(needs)]
        out: dict[str, str] = {}
        for layer in self.backbone_layers():
            block = self.spec.block_of(layer.name)
            if block is not None and has(layer):
                out[block] = layer.name
        return out

    def resolve_layer(self, text: str | None, needs: str = "map") -> str:
        """A layer name from ``NAME``, ``block:N`` (1-based over the blocks ``--finetune-blocks``
        counts), ``block:last``, ``block:BLOCKNAME`` or None, for a use that ``needs``:

        - ``"map"`` (CAMs): a block's last layer with a 4D output ``[N, H, W, C]``; the default
          is :meth:`default_cam_layer`; a NAME must have a 4D output.
        - ``"kernel"`` (filters ranked by weight, inversions): a block's last conv layer; the
          default is the backbone's last conv layer; a NAME is taken as given.

        Example: on simple-cnn, ``block:5`` is ``block5_pool`` for ``"map"`` and
        ``block5_conv`` for ``"kernel"``.

        Raises:
            LeafnetError: unknown layer or block, or a NAME without a 4D output for ``"map"``.
        """
        _check_needs(needs)
        if text is None or text == "":
            return self.default_cam_layer() if needs == "map" else self._last_conv()
        text = str(text).strip()
        if text.startswith("block:"):
            return self._block_layer(text[len("block:"):], needs)
        names = [layer.name for layer in self.model.layers]
        if text not in names:
            import difflib

            close = difflib.get_close_matches(text, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise LeafnetError(f"model {self.model.name!r} has no layer {text!r}{hint}; "
                               f"use a layer name or block:N")
        if needs == "map" and _rank(self.model.get_layer(text)) != 4:
            raise LeafnetError(f"layer {text!r} has output shape {tuple(self.model.get_layer(text).output.shape)}; "
                               "this needs a layer with a 4D output [N, H, W, C] (a conv layer or block output)")
        return text

    def _last_conv(self) -> str:
        convs = [layer.name for layer in self.backbone_layers() if is_conv(layer)]
        return convs[-1] if convs else self.default_cam_layer()

    def _block_layer(self, key: str, needs: str) -> str:
        blocks = self.block_layers(needs)
        trainable = [b for b in self.spec.trainable_blocks if b in blocks]
        allowed = f"1..{len(trainable)}, last or one of {', '.join(blocks)}"
        if key == "last":
            return blocks[trainable[-1]]
        if key in blocks:
            return blocks[key]
        try:
            n = int(key)
        except ValueError:
            raise LeafnetError(f"unknown block {key!r} of {self.spec.name}; expected {allowed}") from None
        if not 1 <= n <= len(trainable):
            raise LeafnetError(f"block:{n} is out of range for {self.spec.name}; expected {allowed}")
        return blocks[trainable[n - 1]]

    def block_of_layer(self, name: str) -> str | None:
        return self.spec.block_of(name) if self.spec is not None else None

    # ------------------------------------------------------------------ images

    def load_images(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """float32 ``[N, size, size, 3]`` in 0..255, decoded and resized exactly as training does."""
        from leafnet.data.codec_messages import quiet_decoders
        from leafnet.predict import decode_file

        out = []
        with quiet_decoders():
            decoded = [(p, *decode_file(str(p), self.size)) for p in paths]
        for p, img, err in decoded:
            if img is None:
                raise LeafnetError(f"cannot use image {p}: {err}")
            out.append(img)
        return np.stack(out).astype("float32") if out else np.zeros((0, self.size, self.size, 3), "float32")

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(x, training=False), dtype=np.float64)

    def per_class(self, n: int) -> list[str]:
        """The first ``n`` validation images of each class (split order), class by class."""
        if not self.val:
            raise LeafnetError("--per-class needs a run folder with a split.csv holding validation images")
        picked: list[str] = []
        for c in range(len(self.classes)):
            picked += [p for p, y in self.val if y == c][:n]
        return picked


def _rank(layer) -> int:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):
        return 0


def is_conv(layer) -> bool:
    """Whether a layer has a conv kernel (``Conv2D``'s ``kernel`` or a depthwise kernel, 4D)."""
    for attr in ("kernel", "depthwise_kernel"):
        k = getattr(layer, attr, None)
        if k is not None and len(k.shape) == 4:
            return True
    return False


NEEDS = ("map", "kernel")
"""What a layer is resolved for: ``map`` (its 4D output, CAMs) or ``kernel`` (its conv filters)."""
_NEEDS_TEST = {"map": lambda layer: _rank(layer) == 4, "kernel": is_conv}


def _check_needs(needs: str) -> str:
    if needs not in NEEDS:
        raise ValueError(f"Unknown `needs`. Expected one of {NEEDS}. Received: needs={needs!r}")
    return needs


def spec_for(model, run_root: Path | None = None):
    """The registry entry of a model: the run's ``model.backbone``, else the model's name
    (``build_classifier`` names the model after the backbone)."""
    from leafnet.errors import ConfigError
    from leafnet.models.registry import get_backbone

    from leafnet.runs import Run

    candidates = []
    if run_root is not None and Run(run_root).dir.config.is_file():
        candidates.append((Run(run_root).config.get("model") or {}).get("backbone"))
    candidates += [model.name, model.name.replace("_", "-")]
    for name in candidates:
        if not name:
            continue
        try:
            return get_backbone(name)
        except ConfigError:
            continue
    return None


def load_subject(source: Any, classes: Sequence[str] | None = None) -> Subject:
    """A :class:`Subject` from a run folder, a :class:`~leafnet.runs.Run`, a ``.keras`` file
    or a Keras model (then ``classes`` names its outputs, default ``"0"``, ``"1"``, ...).

    Example:
        >>> s = load_subject("runs/demo")
        >>> s.resolve_layer("block:3")
        'block3_pool'
    """
    from leafnet.predict import load_predictor
    from leafnet.runs import Run, is_run_dir

    root = None
    if isinstance(source, Run):
        source = source.root
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir() and is_run_dir(source):
        root = Path(source).resolve()
    model, names, size = load_predictor(source)
    if classes is not None and root is None:
        names = list(classes)
        if len(names) != int(model.output_shape[-1]):
            raise LeafnetError(f"{len(names)} class names given for a model with {model.output_shape[-1]} outputs")
    subject = Subject(model=model, classes=list(names), size=size, spec=spec_for(model, root), root=root)
    run = Run(root) if root is not None else None
    if run is not None and run.dir.split.is_file():
        from leafnet.data.verify import check_rows

        check_rows(run.dir)
        index = {c: i for i, c in enumerate(subject.classes)}
        for row in run.split_rows():
            if row.get("class") not in index:
                continue
            path = str(Path(row["path"]).resolve())
            subject.labels[path] = index[row["class"]]
            if row.get("subset") == "val":
                subject.val.append((row["path"], index[row["class"]]))
    return subject
