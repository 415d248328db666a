"""RAdam, Lookahead, Ranger and LayerwiseLR as Keras 3 optimizers, one a module.

tensorflow-addons (``tfa.optimizers.RectifiedAdam``, ``tfa.optimizers.Lookahead``) does not
work with Keras 3; these classes give a tfa-era recipe the same updates:

- :class:`RAdam` (``radam``): rectified Adam with tfa's warmup and SMA threshold.
- :class:`Lookahead` (``lookahead``): wraps any Keras optimizer with slow weights.
- :class:`Ranger` (``lookahead``): Lookahead over RAdam, built from one flat set of arguments.
- :class:`LayerwiseLR` (``layerwise``): wraps any Keras optimizer and scales each variable's
  update by a factor chosen by variable path (discriminative learning rates, layer decay).

``factory.make_optimizer`` turns a phase's config into one of these or a Keras optimizer.

All four are registered with Keras' serializer (package ``leafnet``), so a model compiled
with them saves to ``.keras`` and reloads with ``keras.saving.load_model`` (safe mode) with
its full optimizer state, after ``import leafnet.train.optimizers``.
"""

from leafnet.train.optimizers.layerwise import LayerwiseLR
from leafnet.train.optimizers.lookahead import Lookahead, Ranger
from leafnet.train.optimizers.radam import RAdam

__all__ = ["RAdam", "Lookahead", "Ranger", "LayerwiseLR"]
