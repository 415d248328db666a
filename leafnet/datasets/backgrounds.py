"""Backgrounds behind the leaf: cluttered earthy ground, and the smooth noise it is textured with."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from leafnet.datasets.colours import hsv

BACKGROUNDS = ("black", "clutter", "random")

# Earthy background colour families: hue range, saturation range, value range.
_EARTH = (
    ((18.0, 40.0), (0.25, 0.55), (0.10, 0.26)),  # browns
    ((40.0, 75.0), (0.15, 0.40), (0.08, 0.20)),  # olive, moss
    ((0.0, 360.0), (0.00, 0.10), (0.10, 0.26)),  # greys, stones
    ((12.0, 35.0), (0.25, 0.55), (0.05, 0.15)),  # dark soil
)


def _earth(rng: np.random.Generator) -> tuple[int, int, int]:
    (h0, h1), (s0, s1), (v0, v1) = _EARTH[int(rng.integers(len(_EARTH)))]
    rgb = hsv(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1))
    return tuple(int(c) for c in np.clip(rgb * 255.0, 0, 255))


def smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """An n x n float32 field in [0, 1]: a cells x cells random grid, bicubically upsampled."""
    small = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(small.resize((n, n), Image.BICUBIC), dtype=np.float32) / 255.0


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, spread: float) -> tuple[int, int, int]:
    out = np.array(rgb, dtype=np.float64) * rng.uniform(1.0 - spread, 1.0 + spread)
    return tuple(int(c) for c in np.clip(out + rng.uniform(-12, 12, 3), 0, 255))


def clutter(rng: np.random.Generator, n: int) -> Image.Image:
    """Earthy ground of n x n pixels: mottled texture, low-contrast blobs (soil, stones, litter), twigs."""
    ground = _earth(rng)
    base = np.array(ground, dtype=np.float32)
    t1 = smooth_noise(rng, n, int(rng.integers(3, 8)))
    t2 = smooth_noise(rng, n, int(rng.integers(12, 28)))
    arr = base * (0.75 + 0.4 * t1)[..., None] * (0.9 + 0.2 * t2)[..., None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        cx, cy = rng.uniform(0, n, 2)
        rx, ry = rng.uniform(0.01, 0.07, 2) * n
        fill = _earth(rng) if rng.random() < 0.15 else _jitter(ground, rng, 0.2)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)
    for _ in range(int(rng.integers(1, 5))):
        k = int(rng.integers(2, 5))
        start = rng.uniform(-0.1, 1.1, 2) * n
        steps = rng.normal(0.0, 0.25, (k - 1, 2)) * n
        pts = np.vstack([start, start + np.cumsum(steps, axis=0)])
        width = max(1, int(rng.uniform(0.003, 0.01) * n))
        draw.line([tuple(p) for p in pts], fill=_jitter(ground, rng, 0.5), width=width, joint="curve")
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0.0, rng.uniform(1.0, 4.0), arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
