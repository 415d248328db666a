"""How the command line describes itself: flag help whose defaults and choices come from the
config fields (leafnet.config is their one source), example epilogues, and shell completion.

Imports nothing heavy: ``leafnet --help`` must not wait for TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
from fractions import Fraction
from typing import Any

from leafnet.config import Config

_NULL_MEANS = re.compile(r"\(null: ([^)]*)\)")
_SHORT_CHOICES = 4   # at most this many choices are shown as the metavar {a,b,c}, more are listed in the help


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but an indented line (an example command) keeps its line, and an
    argparse default that means something (not None, False or empty) is shown in the help."""

    def __init__(self, prog: str, **kwargs: Any):
        kwargs.setdefault("max_help_position", 32)
        super().__init__(prog, **kwargs)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if any(line.startswith(" ") for line in lines):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                blocks.append(super()._fill_text(block, width, indent))
        return "\n\n".join(blocks)

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        if (not action.option_strings or action.nargs == 0 or "default: " in text or default is None
                or default is argparse.SUPPRESS or (isinstance(default, (list, tuple, str)) and not default)):
            return text
        return _with_notes(text, ["default: %(default)s"])


def _with_notes(text: str, notes: list[str]) -> str:
    """``text (note; note)``, inside the parenthesis ``text`` ends with if it has one."""
    if not notes:
        return text
    return f"{text[:-1]}; {'; '.join(notes)})" if text.endswith(")") else f"{text} ({'; '.join(notes)})"


def examples(*lines: str) -> str:
    """An epilogue listing example command lines, one a line."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


@functools.cache
def _fields() -> dict[str, tuple[Any, dataclasses.Field]]:
    """``{"section.name": (default, field)}`` of every config key."""
    cfg = Config()
    return {f"{section.name}.{f.name}": (getattr(getattr(cfg, section.name), f.name), f)
            for section in dataclasses.fields(cfg) for f in dataclasses.fields(getattr(cfg, section.name))}


def _field(key: str) -> tuple[Any, dataclasses.Field]:
    return _fields()[key]


def _keys(keys: str | tuple[str, ...]) -> tuple[str, ...]:
    return (keys,) if isinstance(keys, str) else keys


def _shown(value: Any) -> str:
    """A default as a person writes it: ``false``, ``0.0001``, ``1/6``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:.3g}"
        frac = Fraction(value).limit_denominator(100)
        if float(short) != value and float(frac) == value:
            return f"{frac.numerator}/{frac.denominator}"
        return short
    return str(value)


def _choices(keys: tuple[str, ...]) -> tuple[str, ...] | None:
    default, f = _field(keys[0])
    if isinstance(default, bool):
        return ("true", "false")
    return f.metadata.get("choices")


def config_metavar(keys: str | tuple[str, ...], tp: Any, fallback: str | None = None) -> str:
    """The metavar of a flag that sets config ``keys`` and parses its value with ``tp``:
    ``{a,b,c}`` for a few choices, else ``fallback``, else N (int), X (float) or NAME."""
    choices = _choices(_keys(keys))
    if choices and len(choices) <= _SHORT_CHOICES:
        return "{" + ",".join(choices) + "}"
    return fallback or {int: "N", float: "X"}.get(tp, "NAME")


def config_help(keys: str | tuple[str, ...], text: str) -> str:
    """``text`` with the choices (when the metavar does not show them) and the default of config
    ``keys``; a key that defaults to null says what null means, in the field's own help."""
    keys = _keys(keys)
    notes = []
    choices = _choices(keys)
    if choices and len(choices) > _SHORT_CHOICES:
        notes.append("one of: " + ", ".join(choices))
    defaults = {key: _field(key)[0] for key in keys}
    if len(set(map(repr, defaults.values()))) > 1:
        notes.append("default: " + ", ".join(f"{_shown(v)} ({k.split('.')[0]})" for k, v in defaults.items()))
    elif (value := defaults[keys[0]]) is not None:
        notes.append(f"default: {_shown(value)}")
    elif null := _NULL_MEANS.search(_field(keys[0])[1].metadata.get("help", "")):
        notes.append(f"default: {null.group(1)}")
    return _with_notes(text, notes).replace("%", "%%")  # argparse %-formats help


# metavars whose values the shell can complete as paths
_DIRECTORIES = {"DIR", "OUT"}
_PATHS = {"FILE", "RUN", "MODEL", "IMAGE", "IMAGES", "PATH", "RUN|MODEL", "IMAGES_OR_FOLDERS"}


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def add_completion(parser: argparse.ArgumentParser) -> None:
    """``--print-completion bash|zsh|tcsh`` with shtab, when it is installed (leafnet[completion]);
    folder and file arguments complete as paths."""
    try:
        import shtab
    except ImportError:
        return
    for p in _parsers(parser):
        for action in p._actions:
            if action.metavar in _DIRECTORIES:
                action.complete = shtab.DIRECTORY
            elif action.metavar in _PATHS:
                action.complete = shtab.FILE
    shtab.add_argument_to(parser, "--print-completion",
                          help="print a shell completion script (e.g. leafnet --print-completion bash "
                               "> ~/.local/share/bash-completion/completions/leafnet)")
