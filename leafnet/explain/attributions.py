"""Attribution maps: which pixels of an image the classifier's score for a class depends on.

Every method returns maps of the image's size, scaled to 0..1 per image (1: most important).
Gradient methods differentiate the class score before softmax (a linear clone of the
``predictions`` layer), the model runs with ``training=False`` (augmentation off, BatchNorm in
inference mode).

========================  =================================================================
``saliency``              |d score / d pixel|, max over RGB (Simonyan et al. 2013)
``smoothgrad``            saliency averaged over noisy copies (Smilkov et al. 2017)
``gradcam``               feature maps weighted by their mean gradient (Selvaraju et al. 2017)
``gradcam++``             with higher-order weights (Chattopadhyay et al. 2018)
``scorecam``              feature maps weighted by the score of the image masked by them
                          (Wang et al. 2020); gradient-free
``faster-scorecam``       Score-CAM on the ``max_n`` maps of largest variance
``layercam``              per-position positive gradients times activations (Jiang et al. 2021)
``guided-backprop``       gradients through guided ReLUs (:mod:`leafnet.explain.guided`)
``guided-gradcam``        guided backprop times Grad-CAM
========================  =================================================================

tf-keras-vis 0.8.7 runs on Keras 3.15 with three workarounds, all in this module: its
``ReplaceToLinear`` / ``clone`` path is replaced by our own clone (:attr:`Subject.logit_model`),
its guided-backprop modifier by :mod:`leafnet.explain.guided` (it misses ``ReLU`` layers), and its
Score-CAM ``model.predict`` progress bar and Keras' input-structure warning are silenced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from leafnet.errors import LeafnetError
from leafnet.explain.quiet import quiet_vis
from leafnet.explain.subject import Subject, load_subject

CAM_METHODS = ("gradcam", "gradcam++", "scorecam", "faster-scorecam", "layercam", "guided-gradcam")
METHODS = ("saliency", "smoothgrad", "gradcam", "gradcam++", "scorecam", "faster-scorecam", "layercam",
           "guided-backprop", "guided-gradcam")
METHOD_TITLES = {"saliency": "saliency", "smoothgrad": "SmoothGrad", "gradcam": "Grad-CAM",
                 "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM", "faster-scorecam": "Faster Score-CAM",
                 "layercam": "Layer-CAM", "guided-backprop": "guided backprop", "guided-gradcam": "guided Grad-CAM"}


@dataclass
class Attribution:
    """Maps of one method over a batch of images.

    Attributes:
        maps: ``[N, H, W]`` float32 in 0..1, the image's size.
        layer: the layer a CAM method used (None for input-gradient methods).
        rgb: ``[N, H, W, 3]`` in 0..1 for the guided methods (the signed gradient image), else None.
    """

    maps: np.ndarray
    layer: str | None = None
    rgb: np.ndarray | None = None


def _unit(a: np.ndarray) -> np.ndarray:
    """Scale each map to 0..1 (a constant map becomes 0)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    axes = tuple(range(1, a.ndim))
    lo, hi = a.min(axis=axes, keepdims=True), a.max(axis=axes, keepdims=True)
    return np.where(hi > lo, (a - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0).astype(np.float32)


def _signed_unit(g: np.ndarray) -> np.ndarray:
    """A signed gradient image shown around grey: 0.5 + g / (2 max|g|) per image."""
    m = np.abs(g).max(axis=(1, 2, 3), keepdims=True)
    return (0.5 + 0.5 * g / np.where(m > 0, m, 1.0)).astype(np.float32)


def _score(targets: Sequence[int]):
    from tf_keras_vis.utils.scores import CategoricalScore

    return CategoricalScore([int(t) for t in targets])


def _input_gradients(model, x: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    import tensorflow as tf

    xt = tf.convert_to_tensor(x)
    index = tf.constant([[i, int(t)] for i, t in enumerate(targets)])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = model(xt, training=False)
        # images do not interact at inference, so one sum gives each image its own gradient
        score = tf.reduce_sum(tf.gather_nd(out, index))
    return np.asarray(tape.gradient(score, xt))


def attribute(subject: Subject, x: np.ndarray, targets: Sequence[int], method: str, layer: str | None = None,
              smooth_samples: int = 20, smooth_noise: float = 0.2, max_n: int = 16,
              batch_size: int = 32) -> Attribution:
    """Attribution maps of ``method`` for images ``x`` (float32 0..255) and class indices ``targets``.

    Args:
        subject: the model (see :func:`~leafnet.explain.subject.load_subject`).
        x: ``[N, S, S, 3]`` images as the model takes them.
        targets: one class index per image.
        method: one of :data:`METHODS`.
        layer: CAM methods: ``NAME``, ``block:N`` or None (the last layer with a spatial map).
        smooth_samples, smooth_noise: SmoothGrad's noisy copies and their noise (share of the value range).
        max_n: Faster Score-CAM's number of feature maps.

    Returns:
        An :class:`Attribution`.
    """
    if method not in METHODS:
        raise LeafnetError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    x = np.asarray(x, dtype=np.float32)
    if len(x) != len(targets):
        raise ValueError(f"{len(x)} images but {len(targets)} targets")
    name = subject.resolve_layer(layer, needs="map") if method in CAM_METHODS else None
    score = _score(targets)
    with quiet_vis():
        if method in ("saliency", "smoothgrad"):
            from tf_keras_vis.saliency import Saliency

            viz = Saliency(subject.logit_model, clone=False)
            maps = viz(score, x, smooth_samples=smooth_samples if method == "smoothgrad" else 0,
                       smooth_noise=smooth_noise, normalize_map=False)
            return Attribution(_unit(maps))
        if method == "guided-backprop":
            g = _guided_gradients(subject, x, targets)
            return Attribution(_unit(np.abs(g).max(axis=-1)), rgb=_signed_unit(g))
        cam = _cam(subject, x, score, method, name, max_n, batch_size)
        if method == "guided-gradcam":
            g = _guided_gradients(subject, x, targets) * cam[..., None]
            return Attribution(_unit(np.abs(g).max(axis=-1)), layer=name, rgb=_signed_unit(g))
        return Attribution(cam, layer=name)


def _guided_gradients(subject: Subject, x: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    return _input_gradients(subject.guided_logit_model, x, targets)


def _cam(subject: Subject, x, score, method: str, layer: str, max_n: int, batch_size: int) -> np.ndarray:
    kw = dict(penultimate_layer=layer, seek_penultimate_conv_layer=False, normalize_cam=False)
    model = subject.logit_model
    if method in ("gradcam", "guided-gradcam"):
        from tf_keras_vis.gradcam import Gradcam

        maps = Gradcam(model, clone=False)(score, x, **kw)
    elif method == "gradcam++":
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

        maps = GradcamPlusPlus(model, clone=False)(score, x, **kw)
    elif method == "layercam":
        from tf_keras_vis.layercam import Layercam

        maps = Layercam(model, clone=False)(score, x, **kw)
    else:
        from tf_keras_vis.scorecam import Scorecam

        channels = int(model.get_layer(layer).output.shape[-1])
        n = None if method == "scorecam" else max(1, min(int(max_n), channels))
        # Score-CAM softmaxes the model's outputs itself: it needs the logit model too.
        maps = Scorecam(model, clone=False)(score, x, max_N=n, batch_size=batch_size, **kw)
    maps = np.asarray(maps, dtype=np.float32).reshape(len(x), x.shape[1], x.shape[2])
    return _unit(maps)


# --------------------------------------------------------------------------- the command


@dataclass
class Explanation:
    """What :func:`explain` computed and wrote.

    Attributes:
        method: the method.
        paths: the images.
        maps: ``[N, S, S]`` in 0..1.
        rows: one dict per image: path, true, predicted, confidence, target, panel.
        layer: the CAM layer used (None for saliency-type methods).
        files: ``{"panels": [...], "grid": path, "blocks": path, "index": path}`` (those written).
        out: the folder written.
    """

    method: str
    paths: list[str]
    maps: np.ndarray
    rows: list[dict]
    layer: str | None
    files: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None


def _targets(subject: Subject, probs: np.ndarray, true: list[int | None], cls: str,
             paths: Sequence[str]) -> list[int]:
    if cls == "predicted":
        return [int(i) for i in probs.argmax(axis=1)]
    if cls == "true":
        missing = [p for p, t in zip(paths, true) if t is None]
        if missing:
            raise LeafnetError(f"--class true: the class of {missing[0]} is unknown (not in the run's split, "
                               "not in a folder named like a class); use --class predicted or a class name")
        return [int(t) for t in true]
    return [subject.class_index(cls)] * len(paths)


def _blocks_list(text: str | Sequence[str] | None) -> list[str]:
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return [str(i).strip() for i in items if str(i).strip()]


def explain(run: Any, images: Sequence[str | os.PathLike] = (), method: str = "gradcam",
            target: str = "predicted", layer: str | None = None, blocks: str | Sequence[str] | None = None,
            per_class: int = 0, out: str | os.PathLike | None = None, smooth_samples: int = 20,
            max_n: int = 16, plots: bool = True) -> Explanation:
    """Explain a classifier's decisions on images and write the pictures.

    Args:
        run: a run folder, a :class:`~leafnet.runs.Run`, a ``.keras`` file or a
            :class:`~leafnet.explain.subject.Subject`.
        images: image files.
        method: one of :data:`METHODS`.
        target: ``predicted``, ``true`` or a class name: the class whose score is explained.
        layer: CAM methods: ``NAME`` or ``block:N`` (default: the last layer with a spatial map).
        blocks: e.g. ``"1,2,last"``: also explain each image at the output of these backbone
            blocks, side by side (CAM methods only).
        per_class: add the first N validation images of each class (from the run's split).
        out: output folder (default ``RUN/explain/<method>``).

    Returns:
        An :class:`Explanation`. Files: one panel per image (original, overlay, raw map),
        ``grid.png`` when there are several images, ``blocks.png`` with ``blocks``, ``index.csv``.

    Example:
        >>> e = explain("runs/demo", ["leaf.png"], method="gradcam++", layer="block:3")
        >>> e.maps.shape
        (1, 64, 64)
    """
    subject = run if isinstance(run, Subject) else load_subject(run)
    if method not in METHODS:
        raise LeafnetError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    block_keys = _blocks_list(blocks)
    if block_keys and method not in CAM_METHODS:
        raise LeafnetError(f"--blocks compares a CAM at several layers; {method} works on the input "
                           f"(use one of {', '.join(CAM_METHODS)})")
    paths = [str(p) for p in images]
    if per_class:
        paths += subject.per_class(int(per_class))
    if not paths:
        raise LeafnetError("no images to explain: give image files or --per-class N")
    x = subject.load_images(paths)
    probs = subject.predict(x)
    true = [subject.true_label(p) for p in paths]
    targets = _targets(subject, probs, true, target, paths)
    att = attribute(subject, x, targets, method, layer=layer, smooth_samples=smooth_samples, max_n=max_n)
    pred = probs.argmax(axis=1)
    rows = [{"path": p, "true": subject.classes[t] if t is not None else "",
             "predicted": subject.classes[int(k)], "confidence": float(probs[i, k]),
             "target": subject.classes[targets[i]], "target_probability": float(probs[i, targets[i]])}
            for i, (p, t, k) in enumerate(zip(paths, true, pred))]
    result = Explanation(method=method, paths=paths, maps=att.maps, rows=rows, layer=att.layer)
    if not plots:
        return result
    out_dir = subject.out_dir(out, "explain", method.replace("+", "p"))
    result.out = out_dir
    from leafnet.plots import explain as P
    from leafnet.runs import io_guard, safe_filename, write_csv

    title = METHOD_TITLES[method] + (f" at {att.layer}" if att.layer else "")
    panels = []

    def write():
        for i, r in enumerate(rows):
            f = out_dir / f"{i:02d}_{safe_filename(Path(r['path']).stem)}.png"
            P.plot_panel(x[i], att.maps[i], f, title=f"{title}\n{P.caption(r)}",
                         rgb=None if att.rgb is None else att.rgb[i])
            panels.append(f)
            r["panel"] = str(f)
        result.files["panels"] = panels
        if len(rows) > 1:
            result.files["grid"] = out_dir / "grid.png"
            P.plot_grid(x, att.maps, rows, result.files["grid"], title=f"{title}: explained class = {target}")
        if block_keys:
            names = [ly.name for ly in subject.model.layers]
            layers = [subject.resolve_layer(b if b.startswith("block:") or b in names else f"block:{b}", needs="map")
                      for b in block_keys]
            columns = []
            for name in layers:
                a = attribute(subject, x, targets, method, layer=name, smooth_samples=smooth_samples, max_n=max_n)
                shape = subject.model.get_layer(name).output.shape
                block = subject.block_of_layer(name)
                flat = " (1x1: no location)" if shape[1] == 1 and shape[2] == 1 else f" ({shape[1]}x{shape[2]})"
                columns.append((f"{block + ': ' if block else ''}{name}{flat}", a.maps))
            result.files["blocks"] = out_dir / "blocks.png"
            P.plot_blocks(x, columns, rows, result.files["blocks"],
                          title=f"{METHOD_TITLES[method]} at the output of several blocks")
        result.files["index"] = out_dir / "index.csv"
        write_csv(result.files["index"], ["path", "true", "predicted", "confidence", "target", "panel"],
                  ([r["path"], r["true"], r["predicted"], f"{r['confidence']:.6f}", r["target"], r["panel"]]
                   for r in rows))

    io_guard(write, f"the explanations in {out_dir}")
    return result
