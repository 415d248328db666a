"""Filter and class inversions: the input that excites a filter (or a class score) most.

Activation maximisation with tf-keras-vis' ``ActivationMaximization``: start from grey noise,
climb the mean activation of a filter (or the class score before softmax) by gradient steps on
the pixels, while regularisers keep the picture natural (total variation, an Lp norm) and input
modifiers make it robust (random jitter, rotation and scale every step; a Gaussian blur every
few steps). The optimiser is Adam with decoupled weight decay (which pulls the pixel values
towards 0, i.e. black); the loss of every image is recorded at every step.

``top:K`` chooses the K filters of a layer whose weights sum highest (the signed sum of each
filter's kernel, bias excluded: the filters with the strongest net positive response to a
uniform input). ``tune`` searches a small grid of learning rates and weight decays, judged by
the median of the last 10 losses (robust to the jitter's step-to-step noise), not the last one.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from leafnet.errors import LeafnetError
from leafnet.explain.subject import Subject, load_subject


@dataclass
class InversionSettings:
    """How the pictures are optimised.

    The defaults suit 0..255 inputs and scores of order 1..10 (mean filter activations, class
    logits): tf-keras-vis' own defaults (TV 1.0, L1 norm 0.3, tuned for VGG16) outweigh such
    scores, and the picture then only gets smoother and darker.

    Attributes:
        steps: gradient steps.
        lr: Adam's learning rate, in pixel values (0..255) per step.
        weight_decay: Adam's decoupled weight decay (0: none).
        tv: weight of the total-variation regulariser (smoothness).
        norm: weight of the Lp-norm regulariser (small pixel values).
        norm_p: p of that norm.
        jitter: random shift of up to this many pixels every step.
        rotation: random rotation of up to this many degrees every step.
        scale: random zoom between these factors every step (``(1, 1)``: none).
        blur_every: Gaussian blur every this many steps (0: never).
        blur_sigma: the blur's standard deviation in pixels.
        seed: seed of the initial noise and of the random modifiers.
    """

    steps: int = 200
    lr: float = 8.0
    weight_decay: float = 0.0
    tv: float = 0.02
    norm: float = 0.005
    norm_p: int = 1
    jitter: int = 2
    rotation: float = 2.0
    scale: tuple[float, float] = (0.95, 1.05)
    blur_every: int = 8
    blur_sigma: float = 0.5
    seed: int = 0

    def replace(self, **changes: Any) -> "InversionSettings":
        """A copy with the non-None ``changes``; refuses impossible values."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise LeafnetError(f"unknown inversion setting(s) {sorted(unknown)}; expected {sorted(known)}")
        new = dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
        new.validate()
        return new

    def validate(self) -> None:
        checks = [("steps", self.steps >= 1, ">= 1"), ("lr", self.lr > 0, "> 0"),
                  ("weight_decay", self.weight_decay >= 0, ">= 0"), ("tv", self.tv >= 0, ">= 0"),
                  ("norm", self.norm >= 0, ">= 0"), ("norm_p", self.norm_p >= 1, ">= 1"),
                  ("jitter", self.jitter >= 0, ">= 0"), ("rotation", self.rotation >= 0, ">= 0"),
                  ("scale", 0 < self.scale[0] <= self.scale[1], "0 < low <= high"),
                  ("blur_every", self.blur_every >= 0, ">= 0"), ("blur_sigma", self.blur_sigma >= 0, ">= 0")]
        for name, ok, rule in checks:
            if not ok:
                raise LeafnetError(f"inversion setting {name} must be {rule}; received {getattr(self, name)!r}")


# --------------------------------------------------------------------------- choosing filters


def layer_kernel(layer) -> np.ndarray:
    """The kernel of a conv or dense layer (output channels last)."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        depthwise = getattr(layer, "depthwise_kernel", None)
        if depthwise is None:
            raise LeafnetError(f"layer {layer.name!r} has no weights to rank filters by; pick a conv or dense "
                               "layer (--layer NAME) or list filters (--filters 0,5,9)")
        k = np.asarray(depthwise)  # [kh, kw, cin, mult] -> output channel c * mult + m
        return k.reshape(k.shape[0], k.shape[1], 1, -1)
    return np.asarray(kernel)


def top_filters(layer, k: int) -> list[tuple[int, float]]:
    """The ``k`` filters with the largest summed weights: ``[(index, sum), ...]``, largest first
    (ties: lower index first).

    Example:
        kernel ``[3, 3, 3, 4]`` whose filter sums are ``[0.5, -2, 3, 0.5]`` -> ``top_filters(layer, 2)``
        is ``[(2, 3.0), (0, 0.5)]``.
    """
    kernel = layer_kernel(layer)
    sums = kernel.reshape(-1, kernel.shape[-1]).sum(axis=0).astype(np.float64)
    if k < 1:
        raise LeafnetError(f"top:K needs K >= 1; received top:{k}")
    order = np.argsort(-sums, kind="stable")[:k]
    return [(int(i), float(sums[i])) for i in order]


def parse_filters(text: str | Sequence[int] | None, layer, default_top: int = 8) -> tuple[list[int], list[tuple[int, float]]]:
    """``"0,5,9"`` or ``"top:5"`` (or a list of ints) -> (filter indices, the top table or [])."""
    channels = int(layer.output.shape[-1])
    if text is None:
        text = f"top:{min(default_top, channels)}"
    if isinstance(text, str):
        m = re.fullmatch(r"\s*top:(\d+)\s*", text)
        if m:
            table = top_filters(layer, min(int(m.group(1)), channels))
            return [i for i, _ in table], table
        try:
            idx = [int(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise LeafnetError(f"--filters expects indices like 0,5,9 or top:K; received {text!r}") from None
    else:
        idx = [int(i) for i in text]
    bad = [i for i in idx if not 0 <= i < channels]
    if bad or not idx:
        raise LeafnetError(f"filter index {bad[0] if bad else '(none)'} is out of range: layer {layer.name!r} "
                           f"has {channels} filters (0..{channels - 1})")
    return idx, []


# --------------------------------------------------------------------------- optimisation


def _modifiers(s: InversionSettings):
    from scipy.ndimage import gaussian_filter
    from tf_keras_vis.activation_maximization.input_modifiers import InputModifier, Rotate2D, Scale

    import tensorflow as tf

    rng = np.random.default_rng([s.seed, 0xA11])

    class Jitter(InputModifier):
        def __call__(self, x):
            shift = tuple(int(v) for v in rng.integers(-s.jitter, s.jitter + 1, 2))
            return tf.roll(x, shift=shift, axis=(1, 2))

    class PeriodicBlur(InputModifier):
        def __init__(self):
            self.calls = 0

        def __call__(self, x):
            self.calls += 1
            if self.calls % s.blur_every:
                return x
            x = np.asarray(x)
            return gaussian_filter(x, sigma=(0, s.blur_sigma, s.blur_sigma, 0)).astype(x.dtype)

    mods = []
    if s.jitter:
        mods.append(Jitter())
    if s.rotation:
        rot = Rotate2D(degree=s.rotation)
        rot.random_generator = rng
        mods.append(rot)
    if s.scale != (1.0, 1.0):
        sc = Scale(low=s.scale[0], high=s.scale[1])
        sc.random_generator = rng
        mods.append(sc)
    if s.blur_every and s.blur_sigma:
        mods.append(PeriodicBlur())
    return mods


def maximise(model, score, n: int, size: int, s: InversionSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimise ``n`` images of ``size`` px to maximise ``score(model outputs)`` (one value per image).

    Returns:
        ``(images [n, size, size, 3] in 0..255, losses [steps, n], scores [steps, n])``: the loss
        is ``-score + regularisers``, both measured on the step's (modified) input.
    """
    import keras
    import tensorflow as tf
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.activation_maximization.callbacks import Callback
    from tf_keras_vis.activation_maximization.regularizers import Norm, TotalVariation2D

    from leafnet.explain.quiet import quiet_vis

    class Losses(Callback):
        def on_begin(self, **kwargs):
            self.rows, self.scores = [], []

        def __call__(self, i, values, grads, scores, outputs, regularizations=None, overall_score=None, **kw):
            self.rows.append(np.sum([np.asarray(v, dtype=np.float64).reshape(-1) for v in overall_score], axis=0))
            self.scores.append(np.asarray(scores[0], dtype=np.float64).reshape(-1))

    rng = np.random.default_rng([s.seed, 0x5EED])
    seed = tf.constant(rng.uniform(96.0, 160.0, (n, size, size, 3)).astype("float32"))
    losses = Losses()
    regularizers = [r for r in (TotalVariation2D(weight=s.tv) if s.tv else None,
                                Norm(weight=s.norm, p=s.norm_p) if s.norm else None) if r is not None]
    optimizer = keras.optimizers.Adam(learning_rate=s.lr, weight_decay=s.weight_decay or None)
    with quiet_vis():
        images = ActivationMaximization(model, clone=False)(
            score, seed_input=seed, input_range=(0.0, 255.0), input_modifiers=_modifiers(s),
            regularizers=regularizers, steps=s.steps, optimizer=optimizer, callbacks=[losses], training=False)
    return (np.asarray(images, dtype=np.float32), np.asarray(losses.rows, dtype=np.float64),
            np.asarray(losses.scores, dtype=np.float64))


def tail_median(curve: np.ndarray, last: int = 10) -> float:
    """The tuning criterion: the median of the last ``last`` values (of the mean loss per step)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float(np.median(curve[-last:]))


@dataclass
class Inversions:
    """What :func:`inversions` computed and wrote.

    Attributes:
        images: ``[K, S, S, 3]`` in 0..255.
        labels: one title per image (``filter 5`` / a class name).
        losses: ``[steps, K]``, ``-score + regularisers``.
        scores: ``[steps, K]``, the mean activation of the filter (or the class score).
        layer: the layer whose filters were inverted (None for classes).
        top: the ``top:K`` table ``[(filter, summed weight), ...]`` (empty otherwise).
        settings: the settings used (the best ones after tuning).
        tuning: one dict per tried setting (lr, weight_decay, score, curve), with ``tune``.
        files: ``{"grid": ..., "losses": ..., "tuning": ..., "tuning_csv": ..., "json": ...}``.
    """

    images: np.ndarray
    labels: list[str]
    losses: np.ndarray
    scores: np.ndarray
    layer: str | None
    top: list[tuple[int, float]]
    settings: InversionSettings
    tuning: list[dict] = dataclasses.field(default_factory=list)
    files: dict[str, Path] = dataclasses.field(default_factory=dict)
    out: Path | None = None


TUNE_LRS = (2.0, 8.0, 32.0)
TUNE_WDS = (0.0, 1e-3)


def inversions(run: Any, layer: str | None = None, filters: str | Sequence[int] | None = None,
               classes: Sequence[str] | None = None, settings: InversionSettings | None = None,
               tune: bool = False, tune_lrs: Sequence[float] = TUNE_LRS, tune_wds: Sequence[float] = TUNE_WDS,
               tune_steps: int | None = None, out: str | os.PathLike | None = None, plots: bool = True) -> Inversions:
    """Activation maximisation of filters of a layer, or of output classes.

    Args:
        run: a run folder, :class:`~leafnet.runs.Run`, ``.keras`` file or Subject.
        layer: ``NAME`` or ``block:N`` (the block's last conv layer; default: the backbone's last conv
            layer); ignored with ``classes``.
        filters: ``"0,5,9"``, ``"top:K"`` or a list (default ``top:8``).
        classes: class names to invert instead of filters.
        settings: :class:`InversionSettings` (default: its defaults).
        tune: first search ``tune_lrs`` x ``tune_wds`` (``tune_steps`` steps each) and keep the
            setting with the lowest median of the last 10 mean losses.
        out: output folder (default ``RUN/explain/inversions``).

    Returns:
        An :class:`Inversions`; files ``inversions.png``, ``losses.png``, ``inversions.json`` and,
        with ``tune``, ``tuning.png`` and ``tuning.csv``.
    """
    import keras

    subject = run if isinstance(run, Subject) else load_subject(run)
    s = settings or InversionSettings()
    s.validate()
    top: list[tuple[int, float]] = []
    if classes:
        idx = [subject.class_index(c) for c in classes]
        labels = [f"class {subject.classes[i]}" for i in idx]
        model, name = subject.logit_model, None

        def score(outputs):
            return [outputs[j, i] for j, i in enumerate(idx)]
    else:
        name = subject.resolve_layer(layer, needs="kernel")
        target = subject.model.get_layer(name)
        idx, top = parse_filters(filters, target)
        labels = [f"filter {i}" + (f" (sum {w:.3g})" if top else "") for i, (w) in
                  zip(idx, [w for _, w in top] if top else [None] * len(idx))]
        model = keras.Model(subject.model.inputs[0], target.output)

        def score(outputs):
            return [keras.ops.mean(outputs[j, ..., i]) for j, i in enumerate(idx)]

    tuning: list[dict] = []
    if tune:
        short = s.replace(steps=tune_steps or s.steps)
        for lr in tune_lrs:
            for wd in tune_wds:
                _, curves, _ = maximise(model, score, len(idx), subject.size, short.replace(lr=float(lr), weight_decay=float(wd)))
                curve = curves.mean(axis=1)
                tuning.append({"lr": float(lr), "weight_decay": float(wd), "score": tail_median(curve),
                               "curve": curve.tolist()})
        best = min(tuning, key=lambda r: r["score"])
        s = s.replace(lr=best["lr"], weight_decay=best["weight_decay"])
    images, losses, scores = maximise(model, score, len(idx), subject.size, s)
    result = Inversions(images=images, labels=labels, losses=losses, scores=scores, layer=name, top=top,
                        settings=s, tuning=tuning)
    if not plots:
        return result
    out_dir = subject.out_dir(out, "explain", "inversions")
    result.out = out_dir
    from leafnet.plots import explain as P
    from leafnet.runs import io_guard, write_csv, write_json

    what = "classes" if classes else f"filters of {name}"
    desc = (f"{s.steps} steps, Adam lr {s.lr:g}, weight decay {s.weight_decay:g}, TV {s.tv:g}, "
            f"L{s.norm_p} norm {s.norm:g}")

    def write():
        result.files["grid"] = out_dir / "inversions.png"
        P.plot_inversions(images, labels, result.files["grid"],
                          title=f"activation maximisation of {what}\n{desc} (contrast-stretched)")
        result.files["losses"] = out_dir / "losses.png"
        P.plot_losses(losses, labels, result.files["losses"], title=f"loss per step: {what}")
        if tuning:
            result.files["tuning"] = out_dir / "tuning.png"
            P.plot_tuning(tuning, result.files["tuning"],
                          title=f"tuning ({tuning and len(tuning[0]['curve'])} steps each): lower is better")
            result.files["tuning_csv"] = out_dir / "tuning.csv"
            write_csv(result.files["tuning_csv"], ["lr", "weight_decay", "median_last_10_loss"],
                      ([r["lr"], r["weight_decay"], f"{r['score']:.6g}"] for r in tuning))
        result.files["json"] = out_dir / "inversions.json"
        write_json(result.files["json"], {
            "layer": name, "targets": labels, "top": [{"filter": i, "summed_weight": w} for i, w in top],
            "settings": dataclasses.asdict(s), "final_loss": losses[-1].tolist(),
            "median_last_10_loss": [tail_median(losses[:, j]) for j in range(losses.shape[1])],
            "tuning": [{k: v for k, v in r.items() if k != "curve"} for r in tuning]})

    io_guard(write, f"the inversions in {out_dir}")
    return result
