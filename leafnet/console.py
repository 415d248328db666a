"""What leafnet prints, and how: the one console module.

Messages. Code under ``leafnet/`` writes what a person reads through these functions, never
``print``:

- ``info(msg)``: a plain line on stdout (progress, a summary, where outputs went);
- ``note(msg)``: ``note: msg`` on stdout (a default chosen for the user, a setting explained);
- ``warn(msg)``: ``warning: msg`` on stderr (the run goes on, but something is off);
- ``error(msg)``: ``error: msg`` on stderr (the one line before a non-zero exit).

``with quiet():`` (or ``quiet(verbose == 0)``) drops info and notes for a block; warnings and
errors always show. Each message is one ``logging`` record on the ``leafnet`` logger, written
as given (no level name, no time, no colour, so a log file gets no escape codes) and flushed
at once. Its handler is added on the first message, not at import, and only when the logger
has none: a program that configures ``logging.getLogger("leafnet")`` itself keeps its own
handlers. The streams are looked up per message, so redirected or captured ``sys.stdout``
and ``sys.stderr`` get the lines, and a closed pipe raises ``BrokenPipeError`` to the caller.

Progress bars. Keras' ``Progbar`` treats every POSIX process as interactive, so under nohup,
CI, SLURM or a pipe it fills the log with carriage returns and ANSI codes. leafnet draws bars
only when stdout is a terminal (or a notebook) and otherwise prints one plain line per step
of interest (an epoch, a phase).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any, Iterator


LOGGER_NAME = "leafnet"


class LineHandler(logging.Handler):
    """Writes a record's message as one line: below WARNING to stdout, else to stderr.

    Errors while writing propagate (``logging`` would print a traceback and go on), so that
    ``leafnet backbones | head`` ends quietly on its ``BrokenPipeError``."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        stream.write(record.getMessage() + "\n")
        stream.flush()


def logger() -> logging.Logger:
    """The ``leafnet`` logger, with a ``LineHandler`` unless it has handlers already."""
    log = logging.getLogger(LOGGER_NAME)
    if not log.handlers:
        log.addHandler(LineHandler())
        log.propagate = False   # the root logger's handlers would write every line twice
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO)
    return log


def _emit(level: int, msg: str) -> None:
    # no %-args: a message holding "%" (a path, "95%") is written as it is
    logger().log(level, "%s", msg)


def info(msg: str) -> None:
    """``msg`` as a line on stdout (hidden by ``quiet``)."""
    _emit(logging.INFO, msg)


def note(msg: str) -> None:
    """``note: msg`` on stdout (hidden by ``quiet``)."""
    _emit(logging.INFO, f"note: {msg}")


def warn(msg: str, prefix: str = "warning: ") -> None:
    """``warning: msg`` on stderr, always shown."""
    _emit(logging.WARNING, f"{prefix}{msg}")


def error(msg: str, prefix: str = "error: ") -> None:
    """``error: msg`` on stderr, always shown (``prefix=""``: the line as given)."""
    _emit(logging.ERROR, f"{prefix}{msg}")


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Within the block, drop info and notes (warnings and errors still show); a no-op when
    not ``enabled``, so ``with quiet(verbose == 0):`` reads as it means."""
    if not enabled:
        yield
        return
    log = logger()
    saved = log.level
    log.setLevel(max(saved, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(saved)


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
