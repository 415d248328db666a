"""Explanations of a trained classifier: what it attends to, what its filters respond to.

- :func:`explain`: saliency, SmoothGrad, Grad-CAM, Grad-CAM++, Score-CAM (and Faster Score-CAM),
  Layer-CAM (tf-keras-vis), guided backpropagation and guided Grad-CAM, per image and as a grid;
- :func:`inversions`: activation maximisation of filters or classes (tf-keras-vis), with a small
  learning-rate / weight-decay search;
- :func:`filters`: learned conv filters next to the feature maps they produce on one image.

Modules: ``subject`` (the model, its classes, layers and images), ``attributions``, ``guided``,
``inversion``, ``featuremaps``, ``quiet`` (tf-keras-vis without its warnings), ``cli``; the
pictures are drawn by :mod:`leafnet.plots.explain` (``plots`` here is its alias). Nothing here
imports TensorFlow until a function is called, so the command line stays fast.
"""

from __future__ import annotations

_LAZY = {
    "explain": ("leafnet.explain.attributions", "explain"),
    "attribute": ("leafnet.explain.attributions", "attribute"),
    "METHODS": ("leafnet.explain.attributions", "METHODS"),
    "inversions": ("leafnet.explain.inversion", "inversions"),
    "InversionSettings": ("leafnet.explain.inversion", "InversionSettings"),
    "top_filters": ("leafnet.explain.inversion", "top_filters"),
    "filters": ("leafnet.explain.featuremaps", "filters"),
    "filter_pairs": ("leafnet.explain.featuremaps", "filter_pairs"),
    "guided_model": ("leafnet.explain.guided", "guided_model"),
    "load_subject": ("leafnet.explain.subject", "load_subject"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'leafnet.explain' has no attribute {name!r}")
