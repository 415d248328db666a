"""The fourteen leaf species: one record each, with its shape function and colour palette.

A species differs from the others by outline, margin (entire / serrate / dentate /
crenate / spiny), venation and petiole length. Its shape function draws every random
number in a fixed order from the image's stream, so the same stream gives the same leaf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from leafnet.datasets.shapes import catmull_rom, midrib, mirror_keypoints, pinnate_veins, polar, profile, toothed


@dataclass
class LeafShape:
    """One leaf in leaf-local coordinates: outline polygons, (vein, width) pairs, petiole length, midrib bend."""

    polys: list = field(default_factory=list)
    veins: list = field(default_factory=list)
    petiole: float = 0.0
    bend: float = 0.0


@dataclass(frozen=True)
class LeafSpecies:
    """A species record.

    ``shape(rng, bend)`` draws one leaf (``bend`` is the default midrib bend, which a
    species may redraw); ``margin`` and ``venation`` name what the shape draws;
    ``palette`` weights the colour modes of ``leafnet.datasets.colours.COLOUR_MODES``.
    """

    name: str
    shape: Callable[[np.random.Generator, float], LeafShape]
    margin: str
    venation: str
    palette: Mapping[str, float]


def elliptic_entire(rng: np.random.Generator, bend: float) -> LeafShape:
    """Elliptic blade, smooth edge, pinnate veins."""
    u = rng.uniform
    a = u(0.18, 0.23)
    e = u(1.0, 1.2)

    def w(t):
        return a * np.sin(np.pi * t) ** e

    polys = [profile(w)]
    veins = [midrib()] + pinnate_veins(w, np.linspace(0.12, 0.8, int(rng.integers(6, 9))))
    return LeafShape(polys, veins, u(0.08, 0.16), bend)


def ovate_serrate(rng: np.random.Generator, bend: float) -> LeafShape:
    """Ovate blade (widest below the middle), saw-toothed edge."""
    u = rng.uniform
    a = u(0.26, 0.31)
    p = math.log(0.5) / math.log(u(0.28, 0.34))

    def w(t):
        return a * np.sin(np.pi * t**p) ** 0.85

    polys = [toothed(profile(w), "serrate", u(0.09, 0.11), u(0.04, 0.05))]
    veins = [midrib()] + pinnate_veins(w, np.linspace(0.1, 0.78, int(rng.integers(5, 8))))
    return LeafShape(polys, veins, u(0.1, 0.2), bend)


def obovate_spatulate(rng: np.random.Generator, bend: float) -> LeafShape:
    """Obovate blade (widest near the tip), smooth edge, short petiole."""
    u = rng.uniform
    a = u(0.3, 0.36)
    p = math.log(0.5) / math.log(u(0.74, 0.8))

    def w(t):
        return a * np.sin(np.pi * t**p) ** 0.4

    polys = [profile(w)]
    veins = [midrib()] + pinnate_veins(w, np.linspace(0.2, 0.85, int(rng.integers(5, 7))))
    return LeafShape(polys, veins, u(0.02, 0.06), bend)


def lanceolate_willow(rng: np.random.Generator, bend: float) -> LeafShape:
    """Narrow lanceolate blade, finely serrate, often curved."""
    u = rng.uniform
    a = u(0.1, 0.13)
    p = math.log(0.5) / math.log(u(0.3, 0.42))

    def w(t):
        return a * np.sin(np.pi * t**p) ** 0.9

    polys = [toothed(profile(w), "serrate", 0.05, 0.012)]
    veins = [midrib()] + pinnate_veins(w, np.linspace(0.1, 0.85, 9), rise=0.1)
    petiole = u(0.03, 0.07)
    return LeafShape(polys, veins, petiole, u(-0.2, 0.2))


def linear_grass(rng: np.random.Generator, bend: float) -> LeafShape:
    """Grass blade: very narrow, parallel veins, no petiole, strongly bent."""
    u = rng.uniform
    a = u(0.028, 0.042)
    taper = u(0.2, 0.4)

    def w(t):
        return a * np.minimum(1.0, (1.0 - t) / taper) ** 0.8 * np.minimum(1.0, 0.3 + t / 0.05)

    veins = []
    for f in (-0.5, 0.0, 0.5):
        tt = np.linspace(0.0, 0.97, 12)
        veins.append((np.stack([w(tt) * f, tt], axis=1), 0.45 if f else 0.7))
    return LeafShape([profile(w)], veins, 0.0, u(0.15, 0.4) * (1 if rng.random() < 0.5 else -1))


def holly_spiny(rng: np.random.Generator, bend: float) -> LeafShape:
    """Holly: a few large spines on each side."""
    u = rng.uniform
    a = u(0.24, 0.3)

    def w(t):
        return a * np.sin(np.pi * t) ** 0.8

    spines = int(rng.integers(3, 5))
    # About `spines` teeth on each side: the outline is roughly 2.3 units long.
    polys = [toothed(profile(w), "spiny", 2.3 / (2 * spines), u(0.11, 0.13), fade=0.05)]
    veins = [midrib()] + pinnate_veins(w, np.linspace(0.15, 0.75, 5), rise=0.1)
    return LeafShape(polys, veins, u(0.04, 0.08), bend)


def oak_pinnate(rng: np.random.Generator, bend: float) -> LeafShape:
    """Oak: rounded lobes, offset between the two sides, a vein into each lobe."""
    u = rng.uniform
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

    veins = [midrib(0.96)]
    for fun, sgn, phase in ((wr, 1, ph), (wl, -1, ph + 0.22)):
        for k in range(n_lobes + 1):
            t1 = (0.5 + k - phase) / n_lobes
            if 0.08 < t1 < 0.95:
                x1 = float(fun(np.array([t1]))[0]) * 0.9 * sgn
                veins.append((np.array([(0.0, t1 - 0.07), (x1, t1)]), 0.5))
    return LeafShape([profile(wr, wl, n=240)], veins, u(0.03, 0.07), bend)


def maple_palmate(rng: np.random.Generator, bend: float) -> LeafShape:
    """Maple: five pointed lobes from one point, dentate edge, long petiole."""
    u = rng.uniform
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
    polys = [toothed(polar(r, center), "dentate", u(0.07, 0.09), u(0.025, 0.035), fade=0.05)]
    veins = [
        (np.array([(0.0, 0.0), (center[0] + 0.5 * length * math.sin(ang),
                                center[1] + 0.5 * length * math.cos(ang))]), 0.8)
        for ang, length in lobes
    ]  # fmt: skip
    petiole = u(0.3, 0.45)
    return LeafShape(polys, veins, petiole, u(-0.04, 0.04))


def cordate_linden(rng: np.random.Generator, bend: float) -> LeafShape:
    """Linden: heart-shaped with a notch at the base, serrate, slightly asymmetric."""
    u = rng.uniform
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
    polys = [toothed(polar(r, center), "serrate", u(0.05, 0.065), u(0.015, 0.022))]
    top = center[1] + float(r(np.array([0.0]))[0])
    veins = [(np.array([(0.0, 0.0), (0.0, top * 0.5), (0.0, top)]), 1.0)]
    for ang in (0.9, 1.7, 2.4):
        for sgn in (1, -1):
            end = (center[0] + sgn * big * math.sin(ang), center[1] + big * math.cos(ang))
            veins.append((np.array([(0.0, 0.0), end]), 0.6))
    return LeafShape(polys, veins, u(0.15, 0.28), bend)


def orbicular_peltate(rng: np.random.Generator, bend: float) -> LeafShape:
    """Nasturtium-like: a round blade with the petiole joining its middle, veins radiating."""
    u = rng.uniform
    rad = 0.5
    waves = int(rng.integers(5, 9))
    wave_amp = u(0.01, 0.03)
    ph = u(0.0, 2.0 * np.pi)

    def r(phi):
        return rad * (1.0 + wave_amp * np.sin(waves * phi + ph))

    center = (0.0, 0.5)
    poly = polar(r, center)
    poly[:, 0] *= u(0.92, 1.05)
    hub = (u(-0.04, 0.04), 0.5 + u(-0.04, 0.04))
    veins = []
    n_v = int(rng.integers(8, 12))
    for ang in np.linspace(0.0, 2.0 * np.pi, n_v, endpoint=False) + u(0.0, 1.0):
        end = (center[0] + rad * 0.95 * math.sin(ang), center[1] + rad * 0.95 * math.cos(ang))
        veins.append((np.array([hub, end]), 0.8))
    # The petiole is hidden under the blade.
    return LeafShape([poly], veins, 0.0, 0.0)


def deltoid_poplar(rng: np.random.Generator, bend: float) -> LeafShape:
    """Poplar: triangular with a broad straight base, crenate edge."""
    u = rng.uniform
    wb = u(0.4, 0.5)
    kp = mirror_keypoints([(0.0, 0.02), (0.18 * wb / 0.45, 0.0), (wb, 0.08),
                           (0.8 * wb, 0.35), (0.45 * wb, 0.65), (0.2 * wb, 0.86),
                           (0.0, 1.0)])  # fmt: skip
    polys = [toothed(catmull_rom(kp), "crenate", u(0.09, 0.11), u(0.03, 0.04))]
    veins = [midrib(0.98)]
    for sgn in (1, -1):
        veins.append((np.array([(0.0, 0.02), (sgn * wb * 0.85, 0.12)]), 0.6))
        veins.append((np.array([(0.0, 0.25), (sgn * wb * 0.6, 0.45)]), 0.5))
        veins.append((np.array([(0.0, 0.5), (sgn * wb * 0.35, 0.68)]), 0.5))
    return LeafShape(polys, veins, u(0.2, 0.35), bend)


def sagittate_arrow(rng: np.random.Generator, bend: float) -> LeafShape:
    """Arrowhead: two basal lobes pointing back past the petiole."""
    u = rng.uniform
    wb = u(0.28, 0.36)
    lobe = u(0.28, 0.4)
    kp = mirror_keypoints([(0.0, 0.06), (0.09, -0.02), (wb * 0.75, -lobe * 0.6),
                           (wb, -lobe), (wb * 0.95, 0.02), (wb * 0.8, 0.3),
                           (wb * 0.45, 0.65), (0.0, 1.0)])  # fmt: skip
    veins = [midrib(0.98)]
    for sgn in (1, -1):
        veins.append((np.array([(0.0, 0.04), (sgn * wb * 0.9, -lobe * 0.9)]), 0.7))
        veins.append((np.array([(0.0, 0.25), (sgn * wb * 0.75, 0.42)]), 0.5))
        veins.append((np.array([(0.0, 0.5), (sgn * wb * 0.45, 0.68)]), 0.5))
    petiole = u(0.25, 0.45)
    return LeafShape([catmull_rom(kp)], veins, petiole, u(-0.04, 0.04))


def ginkgo_fan(rng: np.random.Generator, bend: float) -> LeafShape:
    """Ginkgo: a fan with a wavy, notched outer edge and many fine fanning veins."""
    u = rng.uniform
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
    veins = []
    for ang in np.linspace(-alpha * 0.9, alpha * 0.9, int(rng.integers(9, 15))):
        veins.append((np.array([(0.0, 0.0), (math.sin(ang), math.cos(ang))]), 0.35))
    petiole = u(0.35, 0.55)
    return LeafShape([poly], veins, petiole, u(-0.03, 0.03))


def clover_trifoliate(rng: np.random.Generator, bend: float) -> LeafShape:
    """Clover: three notched leaflets on one long petiole."""
    u = rng.uniform
    polys, veins = [], []
    spread = u(1.75, 2.15)
    for ang in (0.0, spread, -spread):
        length = u(0.42, 0.52)
        notch = u(0.25, 0.4)

        def r(phi, notch=notch):
            return 0.5 * (1.0 - notch * np.exp(-(phi / 0.35) ** 2))

        leaflet = polar(r, (0.0, 0.5), n=160)
        # Obcordate: narrower towards the stalk, widest near the notched apex.
        leaflet[:, 0] *= 0.55 + 0.45 * np.clip(leaflet[:, 1], 0.0, 1.0) ** 0.5
        leaflet = leaflet * length + np.array([0.0, 0.03])
        c, s_ = math.cos(ang), math.sin(ang)
        rot = np.array([[c, s_], [-s_, c]])
        polys.append(leaflet @ rot)
        veins.append((np.array([(0.0, 0.03), (0.0, 0.03 + length * 0.8)]) @ rot, 0.6))
    return LeafShape(polys, veins, u(0.4, 0.6), 0.0)


# The order is part of the contract (``classes=N`` takes the first N); the most
# distinct outlines come first so that small demo sets are easy. Every colour mode is
# shared by several species so that colour is only a weak cue.
SPECIES_TABLE: tuple[LeafSpecies, ...] = (
    LeafSpecies("maple_palmate", maple_palmate, "dentate", "palmate",
                {"green": 3, "red": 3, "orange": 2, "yellow": 1}),
    LeafSpecies("oak_pinnate", oak_pinnate, "entire", "pinnate",
                {"green": 3, "deep_green": 2, "orange": 2, "red": 2}),
    LeafSpecies("ginkgo_fan", ginkgo_fan, "entire", "dichotomous",
                {"green": 3, "yellow_green": 3, "yellow": 3}),
    LeafSpecies("linear_grass", linear_grass, "entire", "parallel",
                {"green": 3, "yellow_green": 3, "deep_green": 2, "purple": 1}),
    LeafSpecies("cordate_linden", cordate_linden, "serrate", "palmate",
                {"green": 3, "deep_green": 2, "yellow_green": 2, "purple": 2}),
    LeafSpecies("elliptic_entire", elliptic_entire, "entire", "pinnate",
                {"deep_green": 3, "green": 3, "purple": 2, "red": 1}),
    LeafSpecies("lanceolate_willow", lanceolate_willow, "serrate", "pinnate",
                {"green": 3, "yellow_green": 3, "yellow": 1, "deep_green": 1}),
    LeafSpecies("orbicular_peltate", orbicular_peltate, "entire", "radial",
                {"green": 3, "deep_green": 2, "purple": 2, "yellow_green": 1}),
    LeafSpecies("sagittate_arrow", sagittate_arrow, "entire", "palmate",
                {"green": 3, "deep_green": 3, "purple": 2, "yellow_green": 1}),
    LeafSpecies("holly_spiny", holly_spiny, "spiny", "pinnate",
                {"deep_green": 5, "green": 2, "yellow_green": 1, "red": 1}),
    LeafSpecies("clover_trifoliate", clover_trifoliate, "entire", "midrib",
                {"green": 3, "deep_green": 3, "purple": 2, "red": 1}),
    LeafSpecies("deltoid_poplar", deltoid_poplar, "crenate", "palmate",
                {"green": 3, "yellow_green": 2, "yellow": 3}),
    LeafSpecies("ovate_serrate", ovate_serrate, "serrate", "pinnate",
                {"green": 3, "red": 2, "orange": 2, "deep_green": 2}),
    LeafSpecies("obovate_spatulate", obovate_spatulate, "entire", "pinnate",
                {"green": 3, "yellow_green": 2, "red": 2, "purple": 1}),
)

SPECIES: tuple[str, ...] = tuple(s.name for s in SPECIES_TABLE)


def leaf_shape(species: LeafSpecies, rng: np.random.Generator) -> LeafShape:
    """Draw one leaf of ``species`` from ``rng``."""
    # Every leaf first draws a petiole length (each species redraws its own) and a
    # default bend; the stream position they leave is part of every recorded image.
    rng.uniform(0.05, 0.12)
    bend = rng.uniform(-0.08, 0.08)
    return species.shape(rng, bend)
