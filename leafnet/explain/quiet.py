"""Keep tf-keras-vis quiet: it passes inputs as lists (Keras warns) and Score-CAM calls
``predict`` without ``verbose=0`` (a progress bar per image)."""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator


@contextlib.contextmanager
def quiet_vis() -> Iterator[None]:
    """Within the block: no Keras progress bars, no input-structure or deprecation warnings."""
    import keras

    was = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*structure of `inputs`.*")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        if was:
            keras.config.enable_interactive_logging()
