"""Argument checks of the leaf generator: one-line errors naming what is allowed and what came."""

from __future__ import annotations

import numbers
from typing import NoReturn, Optional


def fail(name: str, allowed: str, value: object) -> NoReturn:
    """Raise ``ValueError("<name> must be <allowed>; received <name>=<value!r>")``."""
    raise ValueError(f"{name} must be {allowed}; received {name}={value!r}")


def check_int(name: str, value: object, lo: int, hi: Optional[int] = None) -> int:
    """``value`` as an int if it is an integer (not a bool) in ``[lo, hi]``; else :func:`fail`."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and value >= lo and (hi is None or value <= hi):
        return int(value)
    allowed = f"an integer between {lo} and {hi}" if hi is not None else f"an integer >= {lo}"
    fail(name, allowed, value)


def check_disease(disease: object) -> float:
    """``disease`` as a float if it is a probability (0-1); else :func:`fail`."""
    ok = isinstance(disease, numbers.Real) and not isinstance(disease, bool)
    if ok and 0.0 <= float(disease) <= 1.0:
        return float(disease)
    fail("disease", "a probability between 0 and 1", disease)
