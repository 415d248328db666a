"""One key at a time: type coercion, accepted aliases, bounds and choices, unknown keys with
the closest match suggested, and ``apply_dict`` that overlays a nested mapping on a Config."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Union

from leafnet.config.schema import SECTIONS, Config
from leafnet.errors import ConfigError


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        text = " or ".join(names)
        return text + " or null" if type(None) in typing.get_args(tp) else text
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` as type ``tp`` or raise a ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"{key} must be {_type_name(tp)}; received {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # an integer with hundreds of digits
                value = math.inf
            if math.isfinite(value):
                return value
            raise ConfigError(f"{key} must be a finite number; received {value!r}")
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key} must be {_type_name(tp)}; received {value!r}")


def _canonical_choice(value: Any, meta: dict) -> Any:
    if isinstance(value, str) and meta.get("aliases"):
        return meta["aliases"].get(value.lower(), value)
    return value


def _check_bounds(key: str, value: Any, meta: dict) -> None:
    if value is None or isinstance(value, (str, bool)):
        if meta.get("choices") and value is not None and value not in meta["choices"]:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, meta['choices']))}; received {value!r}")
        return
    bounds = [("ge", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"),
              ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<")]
    for name, ok, sym in bounds:
        bound = meta.get(name)
        if bound is not None and not ok(value, bound):
            raise ConfigError(f"{key} must be {sym} {bound:g}; received {value!r}")


def _unknown(key: str, allowed: typing.Iterable[str]) -> ConfigError:
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _apply_section(section_obj: Any, section: str, values: Any) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"config section {section!r} must be a mapping of keys to values; received {values!r}")
    hints = typing.get_type_hints(type(section_obj))
    fields = {f.name: f for f in dataclasses.fields(section_obj)}
    for name, value in values.items():
        key = f"{section}.{name}"
        if name not in fields:
            raise _unknown(key, [f"{section}.{n}" for n in fields])
        coerced = _canonical_choice(_coerce(key, value, hints[name]), fields[name].metadata)
        _check_bounds(key, coerced, fields[name].metadata)
        setattr(section_obj, name, coerced)


def apply_dict(cfg: Config, values: Any, origin: str = "config") -> Config:
    """Overlay a nested mapping ``{section: {key: value}}`` on ``cfg`` (validated)."""
    if values is None:
        return cfg
    if not isinstance(values, dict):
        raise ConfigError(f"{origin} must be a mapping of sections ({', '.join(SECTIONS)}); received {type(values).__name__}")
    for section, section_values in values.items():
        if section not in SECTIONS:
            raise _unknown(str(section), SECTIONS)
        _apply_section(getattr(cfg, section), section, section_values)
    return cfg
