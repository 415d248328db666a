"""Backbones, the classifier built on them, and their weights.

Importing the package registers the built-in backbones and keras-hub block maps
(:mod:`leafnet.models.backbones`) in :mod:`leafnet.models.registry`, which imports none of
them: a lookup through the registry always finds them, and no import cycle is needed for it.
"""

from leafnet.models import backbones  # noqa: F401  (registers the built-in backbones)
