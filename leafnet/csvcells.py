"""CSV cells safe to open in a spreadsheet, and read back exactly."""

from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: a text cell starting with = + - @ gets a leading quote.

    A cell that starts with a quote gets one more, so :func:`unescape_csv_cell` gives back
    exactly what was written (a class named ``-1`` or ``'x`` survives split.csv).
    """
    if isinstance(value, str) and value[:1] in (*FORMULA_START, "'"):
        return "'" + value
    return value


def unescape_csv_cell(value: str) -> str:
    """The inverse of :func:`escape_csv_cell`."""
    if value[:1] == "'" and value[1:2] in (*FORMULA_START, "'"):
        return value[1:]
    return value
