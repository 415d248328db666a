"""The one exception type for user mistakes.

Anything a user can cause (a wrong flag, a missing folder, a bad config value, an
offline ImageNet download) raises :class:`LeafnetError` with one line that says what
was wrong, what is allowed and what was received. The CLI prints it without a
traceback and exits non-zero; anything else is a bug and keeps its traceback.
"""


class LeafnetError(Exception):
    """A user-facing error: one line, printed by the CLI as ``error: <message>``."""


class ConfigError(LeafnetError):
    """A config key, type or value that is not allowed."""


class DataError(LeafnetError):
    """A data folder that cannot be trained on (missing, empty, one class, ...)."""


class TrainingDiverged(LeafnetError):
    """The loss became NaN or infinite; the run folder keeps the last good epoch."""
