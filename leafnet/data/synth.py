"""Alias of the synthetic leaf generator, now in :mod:`leafnet.datasets` (kept for one version)."""

from leafnet.datasets.leaves import generate
from leafnet.datasets.render import render_leaf
from leafnet.datasets.species import SPECIES

__all__ = ["SPECIES", "render_leaf", "generate"]
