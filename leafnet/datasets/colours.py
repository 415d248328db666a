"""Leaf colours: HSV colour modes, picked per leaf by its species' palette weights."""

from __future__ import annotations

import colorsys
from typing import Mapping

import numpy as np

# Leaf colour modes: hue range (degrees), saturation range, value range.
COLOUR_MODES = {
    "deep_green": ((100.0, 140.0), (0.45, 0.85), (0.3, 0.55)),
    "green": ((78.0, 118.0), (0.45, 0.90), (0.38, 0.75)),
    "yellow_green": ((58.0, 85.0), (0.55, 0.90), (0.50, 0.85)),
    "yellow": ((42.0, 58.0), (0.65, 0.95), (0.65, 0.92)),
    "orange": ((18.0, 38.0), (0.70, 0.95), (0.60, 0.90)),
    "red": ((-12.0, 12.0), (0.60, 0.90), (0.40, 0.80)),
    "purple": ((285.0, 335.0), (0.30, 0.70), (0.32, 0.6)),
}


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB in [0, 1] of hue ``h`` in degrees (any value, taken modulo 360), saturation and value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb((h % 360.0) / 360.0, s, v))


def leaf_colour(palette: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """An RGB colour in [0, 1]: a mode drawn with the palette's weights, then a point inside it."""
    names = sorted(palette)
    weights = np.array([palette[k] for k in names], dtype=np.float64)
    mode = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    (h0, h1), (s0, s1), (v0, v1) = COLOUR_MODES[mode]
    return hsv(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1))
