"""Tests for leafnet.datasets.species: the species table, and that species differ in shape."""

from __future__ import annotations

import re

import numpy as np

from leafnet.datasets import SPECIES, render_leaf


def test_species_names_are_fourteen_folder_safe_and_unique():
    assert len(SPECIES) == 14
    assert len(set(SPECIES)) == 14
    for name in SPECIES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name


def _leaf_masks(species, n=24, size=48):
    """Leaf pixels of black-background renders (the leaf is the only non-black thing)."""
    out = []
    for i in range(n):
        img = np.asarray(render_leaf(species, np.random.default_rng([99, species, i]), size, "black"))
        out.append(img.max(axis=2) > 30)
    return np.stack(out)


def test_species_differ_in_shape_not_only_colour():
    # Leaf area relative to the squared diagonal of its bounding box: a thin grass blade
    # and a round leaf must differ clearly, whatever their colours and poses.
    def compactness(masks):
        vals = []
        for m in masks:
            ys, xs = np.nonzero(m)
            vals.append(m.sum() / ((np.ptp(ys) + 1) ** 2 + (np.ptp(xs) + 1) ** 2))
        return np.array(vals)

    grass = compactness(_leaf_masks(SPECIES.index("linear_grass")))
    round_ = compactness(_leaf_masks(SPECIES.index("orbicular_peltate")))
    assert round_.min() > 0.3
    assert grass.max() < 0.15


def test_mean_images_of_two_species_differ():
    def mean_image(species, seed, n=30):
        imgs = [np.asarray(render_leaf(species, np.random.default_rng([seed, species, i]), 32), np.float64) for i in range(n)]
        return np.mean(imgs, axis=0)

    maple, maple_again = mean_image(0, 5), mean_image(0, 6)
    grass = mean_image(SPECIES.index("linear_grass"), 5)
    between = np.abs(maple - grass).mean()
    within = np.abs(maple - maple_again).mean()
    assert between > 1.5 * within


def test_table_records_are_complete():
    from leafnet.datasets.colours import COLOUR_MODES
    from leafnet.datasets.shapes import MARGINS
    from leafnet.datasets.species import SPECIES_TABLE, LeafShape, leaf_shape

    assert SPECIES == tuple(s.name for s in SPECIES_TABLE)
    for record in SPECIES_TABLE:
        assert record.margin in MARGINS, record.name
        assert record.venation in {"pinnate", "palmate", "parallel", "radial", "dichotomous", "midrib"}, record.name
        assert set(record.palette) <= set(COLOUR_MODES) and len(record.palette) >= 3, record.name
        shape = leaf_shape(record, np.random.default_rng(0))
        assert isinstance(shape, LeafShape) and shape.polys and shape.veins, record.name
        assert all(p.ndim == 2 and p.shape[1] == 2 and len(p) >= 16 for p in shape.polys), record.name
        assert shape.petiole >= 0.0, record.name
    # Every colour mode is shared by at least two species, so colour alone is a weak cue.
    for mode in COLOUR_MODES:
        assert sum(mode in r.palette for r in SPECIES_TABLE) >= 2, mode


def test_toothed_margins_change_the_outline_and_unknown_kinds_are_refused():
    import pytest

    from leafnet.datasets.shapes import MARGINS, profile, toothed

    def w(t):
        return 0.25 * np.sin(np.pi * t)

    def perimeter(poly):
        return np.hypot(*np.diff(np.vstack([poly, poly[:1]]), axis=0).T).sum()

    base = profile(w)
    assert toothed(base, "entire", 0.1, 0.05) is base
    outlines = {kind: toothed(base, kind, 0.1, 0.05) for kind in MARGINS[1:]}
    for kind, poly in outlines.items():  # teeth lengthen the edge
        assert perimeter(poly) > 1.1 * perimeter(base), kind
    # The four tooth profiles differ from each other on the same outline.
    kinds = list(outlines)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1:]:
            assert not np.allclose(outlines[a], outlines[b]), (a, b)
    with pytest.raises(ValueError, match=r"^kind must be one of entire, serrate, dentate, crenate, spiny; "
                                         r"received kind='wavy'$"):
        toothed(base, "wavy", 0.1, 0.05)
