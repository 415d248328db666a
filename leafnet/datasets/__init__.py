"""The synthetic leaves: leafnet's embedded demo data set and the test data of the whole project.

Fourteen species (``species.SPECIES_TABLE``, one record each) are drawn by
``render.render_leaf``; ``leaves.generate`` writes a class-per-folder set and
``demo.demo_folder`` generates the demo set once into a cache folder.
"""

from leafnet.datasets.demo import DEMO, DEMO_VERSION, cache_root, demo_folder, demo_path
from leafnet.datasets.leaves import generate
from leafnet.datasets.render import render_leaf
from leafnet.datasets.species import SPECIES, SPECIES_TABLE, LeafShape, LeafSpecies

__all__ = ["SPECIES", "SPECIES_TABLE", "LeafShape", "LeafSpecies", "render_leaf", "generate",
           "DEMO", "DEMO_VERSION", "cache_root", "demo_path", "demo_folder"]
