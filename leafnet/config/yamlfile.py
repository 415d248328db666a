"""Reading YAML safely: PyYAML's safe loader with YAML 1.2 exponent floats (``3e-4``), and
config files read with one-line errors."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from leafnet.errors import ConfigError


class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``3e-4`` as a number (YAML 1.2), as users write it."""


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_load(stream: Any) -> Any:
    """``yaml.safe_load`` with YAML 1.2 exponent floats; never constructs Python objects.

    Raises:
        yaml.YAMLError: not YAML, or nested too deeply for PyYAML's recursive parser.
    """
    try:
        return yaml.load(stream, Loader=SafeLoader)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


def read_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file with ``yaml.safe_load`` (never the unsafe loader)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
