"""Draw one synthetic leaf image from a species record and a random stream.

The leaf is drawn with Pillow at twice the requested size and downsampled with
LANCZOS (anti-aliasing). Pose, scale, position, colour, brightness and background are
random, so that colour, size or position alone do not tell the species apart.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from leafnet.datasets.backgrounds import BACKGROUNDS, clutter, smooth_noise
from leafnet.datasets.checks import check_disease, check_int, fail
from leafnet.datasets.colours import hsv, leaf_colour
from leafnet.datasets.species import SPECIES_TABLE, LeafShape, leaf_shape


def _local_transform(geom: LeafShape, rng: np.random.Generator):
    """Aspect jitter, asymmetry and a bend of the midrib, in leaf-local coordinates."""
    aspect = rng.uniform(0.9, 1.1)
    asym = rng.uniform(-0.05, 0.05)
    bend = geom.bend

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
    species = check_int("species", species, 0, len(SPECIES_TABLE) - 1)
    size = check_int("size", size, 16)
    if background not in BACKGROUNDS:
        fail("background", "'black', 'clutter' or 'random'", background)
    disease = check_disease(disease)
    if not isinstance(rng, np.random.Generator):
        fail("rng", "a numpy.random.Generator", rng)
    record = SPECIES_TABLE[species]

    n = 2 * size  # drawn at 2x, downsampled with LANCZOS for anti-aliasing
    if background == "random":
        background = "black" if rng.random() < 0.5 else "clutter"
    if background == "black":
        bg = Image.new("RGB", (n, n), (0, 0, 0))
    else:
        bg = clutter(rng, n)

    geom = leaf_shape(record, rng)
    local = _local_transform(geom, rng)
    polys = [local(p) for p in geom.polys]
    veins = [(local(v), w) for v, w in geom.veins]
    pet_len = geom.petiole
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

    colour = leaf_colour(record.palette, rng)
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
    shade *= 0.88 + 0.24 * smooth_noise(rng, n, int(rng.integers(4, 10)))
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
            yellow = hsv(rng.uniform(42, 60), rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.85))
            brown = hsv(rng.uniform(15, 35), rng.uniform(0.5, 0.9), rng.uniform(0.15, 0.45))
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
