"""Write a folder of synthetic leaves: one sub-folder per species, one random stream per image.

Image i of species c is drawn from ``numpy.random.default_rng([seed, c, i])``, so the
same arguments give byte-identical files and a smaller ``per_class`` gives a prefix of
a larger one.

Example:
    >>> from leafnet.datasets import generate
    >>> generate("demo_leaves", classes=5, per_class=20, size=96)  # doctest: +SKIP
    {'maple_palmate': 20, 'oak_pinnate': 20, ...}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
from PIL import Image

from leafnet.datasets.checks import check_disease, check_int, fail
from leafnet.datasets.render import render_leaf
from leafnet.datasets.species import SPECIES

FORMATS = {"png": ("PNG", "png"), "jpg": ("JPEG", "jpg"), "jpeg": ("JPEG", "jpg")}


def _save_atomic(img: Image.Image, path: Path, fmt: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "JPEG":
            img.save(tmp, format=fmt, quality=92)
        else:
            img.save(tmp, format=fmt, compress_level=3)  # much faster to write than the default 6, files a little larger
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
    classes = check_int("classes", classes, 2, len(SPECIES))
    per_class = check_int("per_class", per_class, 1)
    size = check_int("size", size, 16)
    seed = check_int("seed", seed, 0)
    disease = check_disease(disease)
    key = image_format.lower() if isinstance(image_format, str) else None
    if key not in FORMATS:
        fail("image_format", "'png' or 'jpg'", image_format)
    if progress is not None and not callable(progress):
        fail("progress", "a callable(done, total) or None", progress)
    fmt, ext = FORMATS[key]

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
