"""Deterministic generator of synthetic leaf images.

This is leafnet's embedded demo data set and the test data of the whole project.
Fourteen leaf species differ by outline, margin (entire / serrate / dentate /
crenate / spiny), venation (pinnate, palmate, parallel) and petiole length. Colour
ranges overlap between species on purpose, and pose, scale, position, brightness and
background (black or cluttered) are random, so that colour, size or position alone do
not solve the task while a small CNN does.

Every image is drawn with Pillow at twice the requested size and downsampled with
LANCZOS. Each image has its own random stream derived from ``(seed, species, index)``,
so the same arguments give byte-identical files and a smaller ``per_class`` gives a
prefix of a larger one.

Example:
    >>> from leafnet.data.synth import generate
    >>> generate("demo_leaves", classes=5, per_class=20, size=96)  # doctest: +SKIP
    {'maple_palmate': 20, 'oak_pinnate': 20, ...}
"""

from __future__ import annotations

import colorsys
import math
import numbers
import os
from pathlib import Path
from typing import Callable, NoReturn, Optional, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["SPECIES", "render_leaf", "generate"]

# The order is part of the contract (``classes=N`` takes the first N); the most
# distinct outlines come first so that small demo sets are easy.
SPECIES: tuple[str, ...] = (
    "maple_palmate",
    "oak_pinnate",
    "ginkgo_fan",
    "linear_grass",
    "cordate_linden",
    "elliptic_entire",
    "lanceolate_willow",
    "orbicular_peltate",
    "sagittate_arrow",
    "holly_spiny",
    "clover_trifoliate",
    "deltoid_poplar",
    "ovate_serrate",
    "obovate_spatulate",
)

_BACKGROUNDS = ("black", "clutter", "random")
_FORMATS = {"png": ("PNG", "png"), "jpg": ("JPEG", "jpg"), "jpeg": ("JPEG", "jpg")}

# Leaf colour modes: hue range (degrees), saturation range, value range.
_COLOURS = {
    "deep_green": ((100.0, 140.0), (0.45, 0.85), (0.3, 0.55)),
    "green": ((78.0, 118.0), (0.45, 0.90), (0.38, 0.75)),
    "yellow_green": ((58.0, 85.0), (0.55, 0.90), (0.50, 0.85)),
    "yellow": ((42.0, 58.0), (0.65, 0.95), (0.65, 0.92)),
    "orange": ((18.0, 38.0), (0.70, 0.95), (0.60, 0.90)),
    "red": ((-12.0, 12.0), (0.60, 0.90), (0.40, 0.80)),
    "purple": ((285.0, 335.0), (0.30, 0.70), (0.32, 0.6)),
}

# Per-species weights over the colour modes. Every mode is shared by several
# species so that colour is only a weak cue.
_PALETTES: dict[str, dict[str, float]] = {
    "maple_palmate": {"green": 3, "red": 3, "orange": 2, "yellow": 1},
    "oak_pinnate": {"green": 3, "deep_green": 2, "orange": 2, "red": 2},
    "ginkgo_fan": {"green": 3, "yellow_green": 3, "yellow": 3},
    "linear_grass": {"green": 3, "yellow_green": 3, "deep_green": 2, "purple": 1},
    "cordate_linden": {"green": 3, "deep_green": 2, "yellow_green": 2, "purple": 2},
    "elliptic_entire": {"deep_green": 3, "green": 3, "purple": 2, "red": 1},
    "lanceolate_willow": {"green": 3, "yellow_green": 3, "yellow": 1, "deep_green": 1},
    "orbicular_peltate": {"green": 3, "deep_green": 2, "purple": 2, "yellow_green": 1},
    "sagittate_arrow": {"green": 3, "deep_green": 3, "purple": 2, "yellow_green": 1},
    "holly_spiny": {"deep_green": 5, "green": 2, "yellow_green": 1, "red": 1},
    "clover_trifoliate": {"green": 3, "deep_green": 3, "purple": 2, "red": 1},
    "deltoid_poplar": {"green": 3, "yellow_green": 2, "yellow": 3},
    "ovate_serrate": {"green": 3, "red": 2, "orange": 2, "deep_green": 2},
    "obovate_spatulate": {"green": 3, "yellow_green": 2, "red": 2, "purple": 1},
}

# Earthy background colour families: hue range, saturation range, value range.
_EARTH = (
    ((18.0, 40.0), (0.25, 0.55), (0.10, 0.26)),  # browns
    ((40.0, 75.0), (0.15, 0.40), (0.08, 0.20)),  # olive, moss
    ((0.0, 360.0), (0.00, 0.10), (0.10, 0.26)),  # greys, stones
    ((12.0, 35.0), (0.25, 0.55), (0.05, 0.15)),  # dark soil
)


# --------------------------------------------------------------------------- errors


def _fail(name: str, allowed: str, value: object) -> NoReturn:
    raise ValueError(f"{name} must be {allowed}; received {name}={value!r}")


def _check_int(name: str, value: object, lo: int, hi: Optional[int] = None) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and value >= lo and (hi is None or value <= hi):
        return int(value)
    allowed = f"an integer between {lo} and {hi}" if hi is not None else f"an integer >= {lo}"
    _fail(name, allowed, value)


def _check_disease(disease: object) -> float:
    ok = isinstance(disease, numbers.Real) and not isinstance(disease, bool)
    if ok and 0.0 <= float(disease) <= 1.0:
        return float(disease)
    _fail("disease", "a probability between 0 and 1", disease)


# ----------------------------------------------------------------------- geometry
# Leaf-local coordinates: the petiole attaches at the base (0, 0), the leaf points
# towards +y and is about one unit long.


def _profile(w_right, w_left=None, n: int = 120) -> np.ndarray:
    """Closed counter-clockwise outline from half-width functions w(t), t in [0, 1]."""
    u = np.linspace(0.0, 1.0, n)
    t = 0.5 - 0.5 * np.cos(np.pi * u)  # denser near base and tip
    xr = np.maximum(w_right(t), 0.0)
    xl = np.maximum((w_left or w_right)(t), 0.0)
    right = np.stack([xr, t], axis=1)
    left = np.stack([-xl, t], axis=1)[::-1]
    return _dedupe(np.concatenate([right, left]))


def _polar(r_fun, center=(0.0, 0.0), n: int = 480) -> np.ndarray:
    """Closed outline from r(phi); phi = 0 points to the tip (+y), pi to the base."""
    phi = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = np.maximum(r_fun(phi), 1e-3)
    return np.stack([center[0] + r * np.sin(phi), center[1] + r * np.cos(phi)], axis=1)


def _catmull_rom(points, per_segment: int = 16) -> np.ndarray:
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


def _mirror_keypoints(right_half) -> list:
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


def _margin(
    poly: np.ndarray, kind: str, period: float, amp: float, base=(0.0, 0.0), fade: float = 0.12
) -> np.ndarray:
    """Displace an outline along its normals to draw teeth of the given kind."""
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
    else:  # pragma: no cover - internal tables only use the kinds above
        raise AssertionError(kind)
    dist = np.hypot(pts[:, 0] - base[0], pts[:, 1] - base[1])
    w = np.clip((dist - 0.04) / fade, 0.0, 1.0)
    return pts + normal * (amp * d * w)[:, None]


def _pinnate_veins(w, ts, rise: float = 0.12, reach: float = 1.1) -> list:
    """Pairs of secondary veins leaving the midrib at heights ts, reaching the margin."""
    veins = []
    for t0 in ts:
        for sgn in (1, -1):
            t1 = min(t0 + rise, 0.97)
            x1 = float(w(np.array([t1]))[0]) * reach * sgn
            mid = (0.55 * x1, t0 + 0.7 * rise)
            veins.append((np.array([(0.0, t0), mid, (x1, t1)]), 0.5))
    return veins


def _midrib(tip=1.0) -> tuple:
    return (np.array([(0.0, 0.0), (0.0, tip * 0.5), (0.0, tip)]), 1.0)


def _shape(species: int, rng: np.random.Generator) -> dict:
    """Outline polygons, veins and petiole of one leaf in leaf-local coordinates."""
    u = rng.uniform
    name = SPECIES[species]
    veins: list = []
    polys: list = []
    petiole = u(0.05, 0.12)
    bend = u(-0.08, 0.08)

    if name == "elliptic_entire":
        a = u(0.18, 0.23)
        e = u(1.0, 1.2)

        def w(t):
            return a * np.sin(np.pi * t) ** e

        polys.append(_profile(w))
        veins = [_midrib()] + _pinnate_veins(w, np.linspace(0.12, 0.8, int(rng.integers(6, 9))))
        petiole = u(0.08, 0.16)

    elif name == "ovate_serrate":
        a = u(0.26, 0.31)
        p = math.log(0.5) / math.log(u(0.28, 0.34))

        def w(t):
            return a * np.sin(np.pi * t**p) ** 0.85

        polys.append(_margin(_profile(w), "serrate", u(0.09, 0.11), u(0.04, 0.05)))
        veins = [_midrib()] + _pinnate_veins(w, np.linspace(0.1, 0.78, int(rng.integers(5, 8))))
        petiole = u(0.1, 0.2)

    elif name == "obovate_spatulate":
        a = u(0.3, 0.36)
        p = math.log(0.5) / math.log(u(0.74, 0.8))

        def w(t):
            return a * np.sin(np.pi * t**p) ** 0.4

        polys.append(_profile(w))
        veins = [_midrib()] + _pinnate_veins(w, np.linspace(0.2, 0.85, int(rng.integers(5, 7))))
        petiole = u(0.02, 0.06)

    elif name == "lanceolate_willow":
        a = u(0.1, 0.13)
        p = math.log(0.5) / math.log(u(0.3, 0.42))

        def w(t):
            return a * np.sin(np.pi * t**p) ** 0.9

        polys.append(_margin(_profile(w), "serrate", 0.05, 0.012))
        veins = [_midrib()] + _pinnate_veins(w, np.linspace(0.1, 0.85, 9), rise=0.1)
        petiole = u(0.03, 0.07)
        bend = u(-0.2, 0.2)

    elif name == "linear_grass":
        a = u(0.028, 0.042)
        taper = u(0.2, 0.4)

        def w(t):
            return a * np.minimum(1.0, (1.0 - t) / taper) ** 0.8 * np.minimum(1.0, 0.3 + t / 0.05)

        polys.append(_profile(w))
        for f in (-0.5, 0.0, 0.5):
            tt = np.linspace(0.0, 0.97, 12)
            veins.append((np.stack([w(tt) * f, tt], axis=1), 0.45 if f else 0.7))
        petiole = 0.0
        bend = u(0.15, 0.4) * (1 if rng.random() < 0.5 else -1)

    elif name == "holly_spiny":
        a = u(0.24, 0.3)

        def w(t):
            return a * np.sin(np.pi * t) ** 0.8

        spines = int(rng.integers(3, 5))
        # About `spines` teeth on each side: the outline is roughly 2.3 units long.
        polys.append(_margin(_profile(w), "spiny", 2.3 / (2 * spines), u(0.11, 0.13), fade=0.05))
        veins = [_midrib()] + _pinnate_veins(w, np.linspace(0.15, 0.75, 5), rise=0.1)
        petiole = u(0.04, 0.08)

    elif name == "oak_pinnate":
        a = u(0.3, 0.37)
        n_lobes = int(rng.integers(4, 6))
        ph = u(0.0, 0.3)
        depth = u(0.5, 0.62)

        def env(t):
            return a * np.sin(np.pi * t**1.3) ** 0.6

        def mod(t, phase):
            return (1 - depth) + depth * (0.5 - 0.5 * np.cos(2 * np.pi * (n_lobes * t + phase))) ** 0.6

        def wr(t):
            return env(t) * mod(t, ph)

        def wl(t):
            return env(t) * mod(t, ph + 0.22)

        polys.append(_profile(wr, wl, n=240))
        veins = [_midrib(0.96)]
        for fun, sgn, phase in ((wr, 1, ph), (wl, -1, ph + 0.22)):
            for k in range(n_lobes + 1):
                t1 = (0.5 + k - phase) / n_lobes
                if 0.08 < t1 < 0.95:
                    x1 = float(fun(np.array([t1]))[0]) * 0.9 * sgn
                    veins.append((np.array([(0.0, t1 - 0.07), (x1, t1)]), 0.5))
        petiole = u(0.03, 0.07)

    elif name == "maple_palmate":
        side = u(1.0, 1.2)
        low = u(1.95, 2.25)
        lobes = ((0.0, 1.0), (side, u(0.8, 0.95)), (-side, u(0.8, 0.95)),
                 (low, u(0.45, 0.6)), (-low, u(0.45, 0.6)))  # fmt: skip
        r_in = u(0.14, 0.2)
        half = u(0.42, 0.52)

        def r(phi):
            out = np.full_like(phi, r_in)
            for ang, length in lobes:
                dphi = np.abs((phi - ang + np.pi) % (2 * np.pi) - np.pi)
                prof = np.clip(1.0 - dphi / half, 0.0, 1.0) ** 1.3
                out = np.maximum(out, r_in + (length * 0.55 - r_in) * prof)
            return out

        center = (0.0, r_in)
        polys.append(_margin(_polar(r, center), "dentate", u(0.07, 0.09), u(0.025, 0.035), fade=0.05))
        veins = [
            (np.array([(0.0, 0.0), (center[0] + 0.5 * length * math.sin(ang),
                                    center[1] + 0.5 * length * math.cos(ang))]), 0.8)
            for ang, length in lobes
        ]  # fmt: skip
        petiole = u(0.3, 0.45)
        bend = u(-0.04, 0.04)

    elif name == "cordate_linden":
        big = u(0.4, 0.46)
        notch = u(0.25, 0.32)
        tip = u(0.16, 0.25)
        elong = u(0.08, 0.16)
        asym = u(-0.06, 0.06)

        def r(phi):
            rr = big * (1.0 + elong * np.cos(phi) + asym * np.sin(phi))
            rr += tip * np.exp(-((((phi + np.pi) % (2 * np.pi)) - np.pi) / 0.16) ** 2)
            rr -= notch * np.exp(-((phi - np.pi) / 0.25) ** 2)
            return rr

        r_base = float(r(np.array([np.pi]))[0])
        center = (0.0, r_base)
        polys.append(_margin(_polar(r, center), "serrate", u(0.05, 0.065), u(0.015, 0.022)))
        top = center[1] + float(r(np.array([0.0]))[0])
        veins = [(np.array([(0.0, 0.0), (0.0, top * 0.5), (0.0, top)]), 1.0)]
        for ang in (0.9, 1.7, 2.4):
            for sgn in (1, -1):
                end = (center[0] + sgn * big * math.sin(ang), center[1] + big * math.cos(ang))
                veins.append((np.array([(0.0, 0.0), end]), 0.6))
        petiole = u(0.15, 0.28)

    elif name == "orbicular_peltate":
        # Peltate (nasturtium-like): the petiole joins the middle of a round blade, so
        # it is hidden and the veins radiate from the centre.
        rad = 0.5
        waves = int(rng.integers(5, 9))
        wave_amp = u(0.01, 0.03)
        ph = u(0.0, 2.0 * np.pi)

        def r(phi):
            return rad * (1.0 + wave_amp * np.sin(waves * phi + ph))

        center = (0.0, 0.5)
        poly = _polar(r, center)
        poly[:, 0] *= u(0.92, 1.05)
        polys.append(poly)
        hub = (u(-0.04, 0.04), 0.5 + u(-0.04, 0.04))
        n_v = int(rng.integers(8, 12))
        for ang in np.linspace(0.0, 2.0 * np.pi, n_v, endpoint=False) + u(0.0, 1.0):
            end = (center[0] + rad * 0.95 * math.sin(ang), center[1] + rad * 0.95 * math.cos(ang))
            veins.append((np.array([hub, end]), 0.8))
        petiole = 0.0
        bend = 0.0

    elif name == "deltoid_poplar":
        wb = u(0.4, 0.5)
        kp = _mirror_keypoints([(0.0, 0.02), (0.18 * wb / 0.45, 0.0), (wb, 0.08),
                                (0.8 * wb, 0.35), (0.45 * wb, 0.65), (0.2 * wb, 0.86),
                                (0.0, 1.0)])  # fmt: skip
        polys.append(_margin(_catmull_rom(kp), "crenate", u(0.09, 0.11), u(0.03, 0.04)))
        veins = [_midrib(0.98)]
        for sgn in (1, -1):
            veins.append((np.array([(0.0, 0.02), (sgn * wb * 0.85, 0.12)]), 0.6))
            veins.append((np.array([(0.0, 0.25), (sgn * wb * 0.6, 0.45)]), 0.5))
            veins.append((np.array([(0.0, 0.5), (sgn * wb * 0.35, 0.68)]), 0.5))
        petiole = u(0.2, 0.35)

    elif name == "sagittate_arrow":
        wb = u(0.28, 0.36)
        lobe = u(0.28, 0.4)
        kp = _mirror_keypoints([(0.0, 0.06), (0.09, -0.02), (wb * 0.75, -lobe * 0.6),
                                (wb, -lobe), (wb * 0.95, 0.02), (wb * 0.8, 0.3),
                                (wb * 0.45, 0.65), (0.0, 1.0)])  # fmt: skip
        polys.append(_catmull_rom(kp))
        veins = [_midrib(0.98)]
        for sgn in (1, -1):
            veins.append((np.array([(0.0, 0.04), (sgn * wb * 0.9, -lobe * 0.9)]), 0.7))
            veins.append((np.array([(0.0, 0.25), (sgn * wb * 0.75, 0.42)]), 0.5))
            veins.append((np.array([(0.0, 0.5), (sgn * wb * 0.45, 0.68)]), 0.5))
        petiole = u(0.25, 0.45)
        bend = u(-0.04, 0.04)

    elif name == "ginkgo_fan":
        alpha = u(0.85, 1.15)
        deep = u(0.15, 0.35)
        waves = int(rng.integers(5, 10))
        wave_amp = u(0.0, 0.04)
        phi = np.linspace(-alpha, alpha, 120)
        rr = 1.0 - deep * np.exp(-(phi / 0.07) ** 2) + wave_amp * np.sin(waves * phi + u(0, 6.28))
        arc = np.stack([rr * np.sin(phi), rr * np.cos(phi)], axis=1)
        # Slightly concave sides from the base to the corners of the fan.
        s = np.linspace(0.0, 1.0, 20)[1:-1, None]
        pinch = (1 - 0.15 * np.sin(np.pi * s))
        right_side = arc[-1] * s[::-1] * pinch[::-1]
        left_side = arc[0] * s * pinch
        poly = np.concatenate([[[0.0, 0.0]], left_side, arc, right_side])
        polys.append(poly)
        for ang in np.linspace(-alpha * 0.9, alpha * 0.9, int(rng.integers(9, 15))):
            veins.append((np.array([(0.0, 0.0), (math.sin(ang), math.cos(ang))]), 0.35))
        petiole = u(0.35, 0.55)
        bend = u(-0.03, 0.03)

    elif name == "clover_trifoliate":
        spread = u(1.75, 2.15)
        for ang in (0.0, spread, -spread):
            length = u(0.42, 0.52)
            notch = u(0.25, 0.4)

            def r(phi, notch=notch):
                return 0.5 * (1.0 - notch * np.exp(-(phi / 0.35) ** 2))

            leaflet = _polar(r, (0.0, 0.5), n=160)
            # Obcordate: narrower towards the stalk, widest near the notched apex.
            leaflet[:, 0] *= 0.55 + 0.45 * np.clip(leaflet[:, 1], 0.0, 1.0) ** 0.5
            leaflet = leaflet * length + np.array([0.0, 0.03])
            c, s_ = math.cos(ang), math.sin(ang)
            rot = np.array([[c, s_], [-s_, c]])
            polys.append(leaflet @ rot)
            veins.append((np.array([(0.0, 0.03), (0.0, 0.03 + length * 0.8)]) @ rot, 0.6))
        petiole = u(0.4, 0.6)
        bend = 0.0

    else:  # pragma: no cover - SPECIES and this table are kept in step
        raise AssertionError(name)

    return {"polys": polys, "veins": veins, "petiole": petiole, "bend": bend}


# ------------------------------------------------------------------------ drawing


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((h % 360.0) / 360.0, s, v))


def _leaf_colour(species: int, rng: np.random.Generator) -> np.ndarray:
    palette = _PALETTES[SPECIES[species]]
    names = sorted(palette)
    weights = np.array([palette[k] for k in names], dtype=np.float64)
    mode = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    (h0, h1), (s0, s1), (v0, v1) = _COLOURS[mode]
    return _hsv(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1))


def _earth(rng: np.random.Generator) -> tuple[int, int, int]:
    (h0, h1), (s0, s1), (v0, v1) = _EARTH[int(rng.integers(len(_EARTH)))]
    rgb = _hsv(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1))
    return tuple(int(c) for c in np.clip(rgb * 255.0, 0, 255))


def _smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    small = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(small.resize((n, n), Image.BICUBIC), dtype=np.float32) / 255.0


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, spread: float) -> tuple[int, int, int]:
    out = np.array(rgb, dtype=np.float64) * rng.uniform(1.0 - spread, 1.0 + spread)
    return tuple(int(c) for c in np.clip(out + rng.uniform(-12, 12, 3), 0, 255))


def _clutter(rng: np.random.Generator, n: int) -> Image.Image:
    """Earthy ground: mottled texture, low-contrast blobs (soil, stones, litter), twigs."""
    ground = _earth(rng)
    base = np.array(ground, dtype=np.float32)
    t1 = _smooth_noise(rng, n, int(rng.integers(3, 8)))
    t2 = _smooth_noise(rng, n, int(rng.integers(12, 28)))
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


def _local_transform(geom: dict, rng: np.random.Generator):
    """Aspect jitter, asymmetry and a bend of the midrib, in leaf-local coordinates."""
    aspect = rng.uniform(0.9, 1.1)
    asym = rng.uniform(-0.05, 0.05)
    bend = geom["bend"]

    def f(p: np.ndarray) -> np.ndarray:
        x = p[:, 0] * aspect
        x = np.where(x > 0, x * (1 + asym), x * (1 - asym))
        return np.stack([x + bend * p[:, 1] ** 2, p[:, 1]], axis=1)

    return f


def render_leaf(
    species: int,
    rng: np.random.Generator,
    size: int = 128,
    background: str = "random",
    disease: float = 0.0,
) -> Image.Image:
    """One RGB image of size x size. background: 'black', 'clutter' or 'random' (50/50).

    Args:
        species: index into ``SPECIES`` (0-13).
        rng: the random stream for this image; all randomness comes from it.
        size: output width and height in pixels (>= 16).
        background: ``'black'``, ``'clutter'`` (earthy blobs, twigs and texture) or
            ``'random'`` (either, 50/50).
        disease: probability (0-1) that the leaf carries brown/yellow disease spots.

    Returns:
        A ``PIL.Image.Image`` in mode ``'RGB'``.
    """
    species = _check_int("species", species, 0, len(SPECIES) - 1)
    size = _check_int("size", size, 16)
    if background not in _BACKGROUNDS:
        _fail("background", "'black', 'clutter' or 'random'", background)
    disease = _check_disease(disease)
    if not isinstance(rng, np.random.Generator):
        _fail("rng", "a numpy.random.Generator", rng)

    n = 2 * size  # drawn at 2x, downsampled with LANCZOS for anti-aliasing
    if background == "random":
        background = "black" if rng.random() < 0.5 else "clutter"
    if background == "black":
        bg = Image.new("RGB", (n, n), (0, 0, 0))
    else:
        bg = _clutter(rng, n)

    geom = _shape(species, rng)
    local = _local_transform(geom, rng)
    polys = [local(p) for p in geom["polys"]]
    veins = [(local(v), w) for v, w in geom["veins"]]
    pet_len = geom["petiole"]
    petiole = None
    if pet_len > 0:
        py = np.linspace(0.0, -pet_len, 6)
        petiole = local(np.stack([np.zeros_like(py) + rng.uniform(-0.05, 0.05) * py**2, py], 1))

    # Pose: rotation, then scale so the longest side of the bounding box is a random
    # fraction of the image, then a position jitter that keeps the leaf inside.
    theta = rng.uniform(0.0, 2.0 * np.pi)
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]]).T
    every = np.concatenate(polys + ([petiole] if petiole is not None else [])) @ rot
    lo, hi = every.min(axis=0), every.max(axis=0)
    extent = hi - lo
    k = rng.uniform(0.6, 0.95) * n / float(extent.max())
    room = (n - extent * k) / 2.0
    shift = rng.uniform(-0.85, 0.85, 2) * room
    mid = (lo + hi) / 2.0

    def to_px(p: np.ndarray) -> list:
        q = (p @ rot - mid) * k
        return [(float(x), float(y)) for x, y in zip(n / 2 + shift[0] + q[:, 0], n / 2 + shift[1] - q[:, 1])]

    colour = _leaf_colour(species, rng)
    vein_mix = rng.uniform(0.25, 0.45)
    if colour.max() > 0.35:
        vein_rgb = colour * (1 - vein_mix) + np.array([0.95, 0.95, 0.65]) * vein_mix
    else:
        vein_rgb = colour * (1 + 2.5 * vein_mix)
    vein_fill = tuple(int(v) for v in np.clip(vein_rgb * 255, 0, 255))

    # Leaf layer: base colour with a soft light gradient and blotchy texture.
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
    ang = rng.uniform(0.0, 2.0 * np.pi)
    shade = 1.0 + rng.uniform(0.15, 0.45) * (xx * math.cos(ang) + yy * math.sin(ang))
    shade *= 0.88 + 0.24 * _smooth_noise(rng, n, int(rng.integers(4, 10)))
    layer_arr = (colour.astype(np.float32) * 255.0)[None, None, :] * shade[..., None]
    layer = Image.fromarray(np.clip(layer_arr, 0, 255).astype(np.uint8))

    mask = Image.new("L", (n, n), 0)
    mdraw = ImageDraw.Draw(mask)
    ldraw = ImageDraw.Draw(layer)
    unit = k  # pixels per leaf-local unit
    if petiole is not None:
        pw = max(2, int(round(unit * rng.uniform(0.018, 0.028))))
        mdraw.line(to_px(petiole), fill=255, width=pw, joint="curve")
        ldraw.line(to_px(petiole), fill=vein_fill, width=pw, joint="curve")
    for p in polys:
        mdraw.polygon(to_px(p), fill=255)
    mid_w = unit * rng.uniform(0.016, 0.022)
    for v, w in veins:
        ldraw.line(to_px(v), fill=vein_fill, width=max(1, int(round(mid_w * w))), joint="curve")

    if rng.random() < disease:
        m = np.asarray(mask)
        cand = rng.uniform(0.0, 1.0, (96, 2)) * (hi - lo) + lo
        pix = np.array(to_px(cand @ rot.T)).round().astype(int).clip(0, n - 1)
        inside = pix[m[pix[:, 1], pix[:, 0]] > 0]
        count = int(rng.integers(2, 10))
        for x, y in inside[:count]:
            rad = rng.uniform(0.015, 0.045) * extent.max() * k
            halo = rad * rng.uniform(1.4, 2.0)
            yellow = _hsv(rng.uniform(42, 60), rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.85))
            brown = _hsv(rng.uniform(15, 35), rng.uniform(0.5, 0.9), rng.uniform(0.15, 0.45))
            ldraw.ellipse((x - halo, y - halo, x + halo, y + halo), fill=tuple(int(c) for c in yellow * 255))
            ldraw.ellipse((x - rad, y - rad, x + rad, y + rad), fill=tuple(int(c) for c in brown * 255))

    if background == "clutter":
        # A soft drop shadow lifts the leaf off the ground, as in a photograph.
        off = rng.uniform(0.005, 0.02, 2) * n
        shadow = Image.new("L", (n, n), 0)
        shadow.paste(mask, (int(off[0]), int(off[1])))
        shadow = shadow.filter(ImageFilter.BoxBlur(max(1, n // 64)))
        dark = np.asarray(shadow, dtype=np.float32)[..., None] / 255.0 * rng.uniform(0.3, 0.6)
        bg = Image.fromarray((np.asarray(bg, dtype=np.float32) * (1.0 - dark)).astype(np.uint8))
    img = Image.composite(layer, bg, mask).resize((size, size), Image.LANCZOS)
    # Slight lens softness: photographs are never pixel-sharp, and a model trained with
    # rotation augmentation (which interpolates) should not meet sharper images at test.
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    arr = np.asarray(img, dtype=np.float32) * rng.uniform(0.8, 1.2)
    arr += rng.normal(0.0, rng.uniform(0.0, 2.0), arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


# --------------------------------------------------------------------- generation


def _save_atomic(img: Image.Image, path: Path, fmt: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "JPEG":
            img.save(tmp, format=fmt, quality=92)
        else:
            img.save(tmp, format=fmt, compress_level=3)  # 3x faster than 6, files ~10% larger
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def generate(
    out_dir: Union[str, os.PathLike],
    classes: int = 14,
    per_class: int = 100,
    size: int = 128,
    seed: int = 0,
    disease: float = 0.1,
    image_format: str = "png",
    progress: Optional[Callable[[int, int], None]] = None,
) -> dict[str, int]:
    """Writes out_dir/<species>/<species>_<index:04d>.<ext>; returns {species: count}.

    Args:
        out_dir: destination folder (created if missing); existing files with the same
            names are replaced.
        classes: number of species, the first ``classes`` of ``SPECIES`` (2-14).
        per_class: images per species (>= 1).
        size: image width and height in pixels (>= 16).
        seed: base seed (>= 0); image i of species c uses
            ``numpy.random.default_rng([seed, c, i])``.
        disease: probability that a leaf carries disease spots (0-1).
        image_format: ``'png'`` or ``'jpg'``.
        progress: optional ``callable(done, total)`` called after each image.

    Returns:
        ``{species_name: number_of_images_written}`` in ``SPECIES`` order.
    """
    classes = _check_int("classes", classes, 2, len(SPECIES))
    per_class = _check_int("per_class", per_class, 1)
    size = _check_int("size", size, 16)
    seed = _check_int("seed", seed, 0)
    disease = _check_disease(disease)
    key = image_format.lower() if isinstance(image_format, str) else None
    if key not in _FORMATS:
        _fail("image_format", "'png' or 'jpg'", image_format)
    if progress is not None and not callable(progress):
        _fail("progress", "a callable(done, total) or None", progress)
    fmt, ext = _FORMATS[key]

    root = Path(out_dir)
    total = classes * per_class
    done = 0
    counts: dict[str, int] = {}
    for c in range(classes):
        name = SPECIES[c]
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng([seed, c, i])
            img = render_leaf(c, rng, size=size, background="random", disease=disease)
            _save_atomic(img, folder / f"{name}_{i:04d}.{ext}", fmt)
            done += 1
            if progress is not None:
                progress(done, total)
        counts[name] = per_class
    return counts
