"""Building a Config with its precedence: built-in defaults < ``--config`` YAML < explicit flags
< ``--set section.key=value``; the result is validated before any work starts."""

from __future__ import annotations

import os
import typing
from typing import Any

import yaml

from leafnet.config.checks import validate
from leafnet.config.keys import apply_dict
from leafnet.config.schema import Config
from leafnet.config.yamlfile import read_yaml, safe_load
from leafnet.errors import ConfigError


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``section.key=value`` into parts; the value is read as YAML (``3e-4``, ``true``, ``null``)."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.key=value; received {text!r}")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set expects section.key=value with one dot, e.g. transfer.lr=3e-4; received {text!r}")
    try:
        value = safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts[0], parts[1], value


def load_config(path: str | os.PathLike | None = None, flags: dict[str, Any] | None = None,
                overrides: typing.Sequence[str] = ()) -> Config:
    """Build a validated Config: defaults < YAML file < ``flags`` < ``overrides``.

    Args:
        path: optional YAML file with sections ``data``, ``augment``, ``model``,
            ``transfer``, ``finetune``, ``run``.
        flags: dotted keys to values, e.g. ``{"model.backbone": "b4"}``; None values are skipped.
        overrides: ``section.key=value`` strings as given to ``--set``.

    Returns:
        The Config, checked for unknown keys, types and ranges.
    """
    cfg = Config()
    if path is not None:
        apply_dict(cfg, read_yaml(path), origin=str(path))
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in (flags or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".")
        nested.setdefault(section, {})[key] = value
    apply_dict(cfg, nested, origin="flags")
    for text in overrides:
        section, key, value = parse_override(text)
        apply_dict(cfg, {section: {key: value}}, origin="--set")
    validate(cfg)
    return cfg


def config_from_dict(values: dict) -> Config:
    """A validated Config from a nested mapping (e.g. a run's ``config.yaml``)."""
    cfg = apply_dict(Config(), values)
    validate(cfg)
    return cfg
