"""What leafnet prints: progress bars only on a terminal, TensorFlow imported without its
start-up noise.

Keras' ``Progbar`` treats every POSIX process as interactive, so under nohup, CI, SLURM
or a pipe it fills the log with carriage returns and ANSI codes. leafnet draws bars only
when stdout is a terminal (or a notebook) and otherwise prints one plain line per step
of interest (an epoch, a phase).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def interactive() -> bool:
    """Whether stdout is a terminal or a notebook, where a redrawn bar makes sense."""
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        tty = bool(isatty and isatty())
    except ValueError:  # a closed stream
        tty = False
    return tty or "ipykernel" in sys.modules


class _NoBar:
    """The progress bar of a log file: draws nothing."""

    def update(self, current: int, values: Any = None, finalize: bool | None = None) -> None:
        pass

    def add(self, n: int, values: Any = None) -> None:
        pass


def progress_bar(total: int | None, unit_name: str = "step", enabled: bool = True, **kw: Any):
    """A Keras ``Progbar`` on a terminal; an object with the same ``update``/``add`` that
    prints nothing otherwise (or when not ``enabled``)."""
    if not (enabled and interactive()):
        return _NoBar()
    import keras

    return keras.utils.Progbar(total, unit_name=unit_name, **kw)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with C-level stderr muted: its start-up lines (absl, oneDNN, CUDA
    stubs, CPU feature guard, cuInit) are printed before any log level applies and mean
    nothing to a user. A no-op once TensorFlow is imported."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with muted_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # device probing logs too (cuInit on machines without a GPU)


class muted_stderr:
    """Redirect file descriptor 2 (where C libraries write) to /dev/null for a block."""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
