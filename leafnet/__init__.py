"""leafnet: transfer learning for image classification on Keras 3 / TensorFlow.

Public API (imported lazily, so ``import leafnet`` and the CLI's error paths stay fast)::

    import leafnet
    run = leafnet.fit({"data": {"data": "my_images/"}, "model": {"backbone": "b0"}})
    run.metrics["val_accuracy"]
    result = leafnet.search({"data": {"data": "my_images/"}}, tuner="bayesian", max_trials=20)

``evaluate``, ``predict``, ``export``, ``explain``, ``pretext`` and ``report`` are modules of
the same names: ``from leafnet.evaluate import evaluate``, and so on.
"""

from __future__ import annotations

from leafnet.version import __version__

_LAZY = {
    "fit": ("leafnet.train.fit", "fit"),
    "Run": ("leafnet.runs", "Run"),
    "Config": ("leafnet.config", "Config"),
    "load_config": ("leafnet.config", "load_config"),
    "LeafnetError": ("leafnet.errors", "LeafnetError"),
    "get_backbone": ("leafnet.models.registry", "get_backbone"),
    "list_backbones": ("leafnet.models.registry", "list_backbones"),
    "scan_folder": ("leafnet.data.scan", "scan_folder"),
    "search": ("leafnet.tune.search", "search"),
    "cross_validate": ("leafnet.tune.cv", "cross_validate"),
}

__all__ = sorted(_LAZY) + ["__version__"]


# The modules that define leafnet's registered Keras objects (layers, optimizers, losses,
# schedules). Each imports keras and nothing of leafnet's that imports keras.
_KERAS_OBJECT_MODULES = ("leafnet.data.augment", "leafnet.train.losses", "leafnet.train.optimizers",
                         "leafnet.train.schedules")


def _register_keras_objects(_keras) -> None:
    import importlib
    import sys

    for name in _KERAS_OBJECT_MODULES:
        if name not in sys.modules:  # one being imported right now registers its objects itself
            importlib.import_module(name)


def _install_registration_hook() -> None:
    """Register leafnet's Keras objects as soon as Keras is imported (at once if it already is),
    so ``keras.saving.load_model("best.keras")`` works after ``import leafnet`` without
    ``import leafnet`` itself paying for TensorFlow."""
    import wrapt

    wrapt.register_post_import_hook(_register_keras_objects, "keras")


_install_registration_hook()


def _cpu_defaults() -> None:
    from leafnet.perf import configure_cpu

    configure_cpu()  # environment defaults TensorFlow reads when it is imported (leafnet/perf.py)


_cpu_defaults()


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        if module not in ("leafnet.config", "leafnet.errors", "leafnet.runs"):
            from leafnet.console import import_tensorflow_quietly

            import_tensorflow_quietly()   # these import TensorFlow: without its start-up lines
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'leafnet' has no attribute {name!r}")
