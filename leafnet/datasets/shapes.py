"""Outline and vein geometry of a leaf, in leaf-local coordinates.

The petiole attaches at the base (0, 0), the leaf points towards +y and is about one
unit long. Outlines are closed polygons (N x 2 arrays); veins are (polyline, width)
pairs, the width relative to the midrib's.
"""

from __future__ import annotations

import math

import numpy as np

# Margin kinds understood by :func:`toothed`; "entire" is a smooth edge.
MARGINS = ("entire", "serrate", "dentate", "crenate", "spiny")


def profile(w_right, w_left=None, n: int = 120) -> np.ndarray:
    """Closed counter-clockwise outline from half-width functions w(t), t in [0, 1]."""
    u = np.linspace(0.0, 1.0, n)
    t = 0.5 - 0.5 * np.cos(np.pi * u)  # denser near base and tip
    xr = np.maximum(w_right(t), 0.0)
    xl = np.maximum((w_left or w_right)(t), 0.0)
    right = np.stack([xr, t], axis=1)
    left = np.stack([-xl, t], axis=1)[::-1]
    return _dedupe(np.concatenate([right, left]))


def polar(r_fun, center=(0.0, 0.0), n: int = 480) -> np.ndarray:
    """Closed outline from r(phi); phi = 0 points to the tip (+y), pi to the base."""
    phi = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = np.maximum(r_fun(phi), 1e-3)
    return np.stack([center[0] + r * np.sin(phi), center[1] + r * np.cos(phi)], axis=1)


def catmull_rom(points, per_segment: int = 16) -> np.ndarray:
    """Smooth closed curve through the given key points."""
    p = np.asarray(points, dtype=np.float64)
    m = len(p)
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(m):
        p0, p1, p2, p3 = p[i - 1], p[i], p[(i + 1) % m], p[(i + 2) % m]
        out.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    return np.concatenate(out)


def mirror_keypoints(right_half) -> list:
    """Key points of a symmetric outline from its right half listed base -> tip."""
    right = [tuple(p) for p in right_half]
    left = [(-x, y) for (x, y) in right[::-1] if x != 0.0]
    return right + left


def _dedupe(poly: np.ndarray) -> np.ndarray:
    d = np.hypot(*np.diff(np.vstack([poly, poly[:1]]), axis=0).T)
    return poly[d > 1e-9]


def _signed_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _resample(poly: np.ndarray, spacing: float) -> tuple[np.ndarray, float]:
    closed = np.vstack([poly, poly[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    length = float(s[-1])
    n = max(64, int(math.ceil(length / spacing)))
    st = np.linspace(0.0, length, n, endpoint=False)
    return np.stack([np.interp(st, s, closed[:, 0]), np.interp(st, s, closed[:, 1])], 1), length


def toothed(
    poly: np.ndarray, kind: str, period: float, amp: float, base=(0.0, 0.0), fade: float = 0.12
) -> np.ndarray:
    """Displace an outline along its normals to draw teeth of the given kind (see ``MARGINS``).

    The teeth fade out within ``fade`` of ``base`` so the petiole joins a smooth edge.
    """
    if kind == "entire" or amp <= 0.0:
        return poly
    pts, length = _resample(poly, period / 10.0)
    n_teeth = max(3, int(round(length / period)))
    period = length / n_teeth
    n = len(pts)
    s = np.arange(n) * (length / n)
    phi = (s / period) % 1.0
    tan = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)
    tan /= np.maximum(np.hypot(tan[:, 0], tan[:, 1]), 1e-12)[:, None]
    ccw = _signed_area(pts) > 0
    normal = np.stack([tan[:, 1], -tan[:, 0]], axis=1) * (1.0 if ccw else -1.0)
    if kind == "serrate":
        # Saw teeth lean towards the apex: on a CCW outline the right side runs upwards.
        upward = (pts[:, 0] >= 0) == ccw
        q = np.where(upward, phi, 1.0 - phi)
        d = np.where(q < 0.75, q / 0.75, (1.0 - q) / 0.25) - 0.4
    elif kind == "dentate":
        d = 1.0 - 2.0 * np.abs(phi - 0.5) - 0.35
    elif kind == "crenate":
        d = np.sin(np.pi * phi) - 0.65
    elif kind == "spiny":
        d = (1.0 - 2.0 * phi) ** 2 - 0.35
    else:
        raise ValueError(f"kind must be one of {', '.join(MARGINS)}; received kind={kind!r}")
    dist = np.hypot(pts[:, 0] - base[0], pts[:, 1] - base[1])
    w = np.clip((dist - 0.04) / fade, 0.0, 1.0)
    return pts + normal * (amp * d * w)[:, None]


def pinnate_veins(w, ts, rise: float = 0.12, reach: float = 1.1) -> list:
    """Pairs of secondary veins leaving the midrib at heights ts, reaching the margin."""
    veins = []
    for t0 in ts:
        for sgn in (1, -1):
            t1 = min(t0 + rise, 0.97)
            x1 = float(w(np.array([t1]))[0]) * reach * sgn
            mid = (0.55 * x1, t0 + 0.7 * rise)
            veins.append((np.array([(0.0, t0), mid, (x1, t1)]), 0.5))
    return veins


def midrib(tip=1.0) -> tuple:
    """The central vein from the base to height ``tip``, at full width."""
    return (np.array([(0.0, 0.0), (0.0, tip * 0.5), (0.0, tip)]), 1.0)
