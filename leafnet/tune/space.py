"""Search spaces: a YAML mapping from config keys to the values a search may give them.

::

    transfer.lr: {min: 1.0e-4, max: 1.0e-1, sampling: log}   # float range, log-uniform
    data.batch_size: [16, 32, 64]                             # a choice
    model.dropout: {min: 0.0, max: 0.5, step: 0.1}            # a float grid
    finetune.blocks: {min: 0, max: 3}                          # integers 0..3
    model.backbone: simple-cnn                                 # fixed
    phases.loss: [crossentropy, focal]                         # both phases get the same value
    phases.focal_gamma: {min: 1.0, max: 3.0, when: {phases.loss: focal}}   # only when loss is focal

Keys are config keys (``section.key``, see ``leafnet config``) or ``phases.key`` for a key of
both training phases. A range whose bounds are integers (and whose step, if any, is an
integer) is an integer range. ``when`` makes an entry conditional on an earlier choice.

Every value an entry can take is applied to the base config and validated before any
trial, so an impossible space is refused up front with the entry named.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from typing import Any

from leafnet.config import SECTIONS, Config, apply_dict, read_yaml, validate
from leafnet.errors import ConfigError

PHASES = ("transfer", "finetune")

# Used when `leafnet search` gets no --space: the knobs that matter most for transfer learning.
DEFAULT_SPACE = {
    "transfer.lr": {"min": 1e-4, "max": 3e-2, "sampling": "log"},
    "data.batch_size": [16, 32, 64],
    "model.dropout": {"min": 0.0, "max": 0.5, "step": 0.1},
    "phases.label_smoothing": [0.0, 0.1],
}

# The search scans and splits the data once, and owns the trial folders: these are not searchable.
FIXED_BY_SEARCH = {"data.data", "data.train", "data.val", "data.demo", "data.val_split", "run.dir", "run.verbose"}

GRID_ENTRY_LIMIT = 100_000      # values of one entry a grid search may list
GRID_LIMIT = 1_000_000          # points of a whole grid (the product of its entries' counts)

_RANGE_KEYS = {"min", "max", "step", "sampling", "when"}
_CHOICE_KEYS = {"values", "when"}
_FIXED_KEYS = {"value", "when"}


@dataclasses.dataclass
class Entry:
    """One hyperparameter: ``kind`` is ``float``, ``int``, ``choice`` or ``fixed``."""

    key: str
    kind: str
    values: list | None = None         # choice: the options; fixed: [value]
    min: float | None = None
    max: float | None = None
    step: float | None = None
    sampling: str = "linear"
    when: dict[str, list] | None = None

    @property
    def discrete(self) -> bool:
        return self.kind in ("choice", "fixed", "int") or self.step is not None

    def count(self) -> int | None:
        """How many values a grid lists for this entry (KerasTuner's spacing: ``step`` apart,
        or a factor ``step`` apart under log sampling); None for a continuous range."""
        if self.kind in ("choice", "fixed"):
            return len(self.values)
        step = self.step if self.step is not None else (1 if self.kind == "int" else None)
        if step is None:
            return None
        if self.sampling == "linear":
            return int((self.max - self.min) // step + 1)   # as KerasTuner: max may fall out to rounding
        if step <= 1:
            return None   # KerasTuner refuses a log step of 1 or less when it declares the entry
        return int(math.log(self.max / self.min, step) + 1e-8) + 1

    def candidates(self) -> list:
        """The values to validate against the config: every option, or a range's two ends."""
        if self.kind in ("choice", "fixed"):
            return list(self.values)
        return [self.min, self.max]

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def config_keys(key: str) -> list[tuple[str, str]]:
    """``"transfer.lr"`` -> ``[("transfer", "lr")]``; ``"phases.lr"`` -> both phases."""
    section, _, name = key.partition(".")
    if section == "phases":
        return [(p, name) for p in PHASES]
    return [(section, name)]


def _entry(key: Any, spec: Any) -> Entry:
    if not isinstance(key, str) or "." not in key:
        raise ConfigError(f"search space entry {key!r}: keys are SECTION.KEY config keys (e.g. transfer.lr) "
                          "or phases.KEY for both phases")
    section = key.partition(".")[0]
    if key in FIXED_BY_SEARCH:
        raise ConfigError(f"search space entry {key!r}: the data and the trial folders are fixed for a whole search "
                          "(give them as flags); not searchable")
    if section not in SECTIONS and section != "phases":
        raise ConfigError(f"search space entry {key!r}: unknown section {section!r}; "
                          f"choose one of: {', '.join([*SECTIONS, 'phases'])}")
    when = None
    if isinstance(spec, dict):
        when = spec.get("when")
        if when is not None:
            if not isinstance(when, dict) or len(when) != 1:
                raise ConfigError(f"search space entry {key!r}: 'when' must be one mapping PARENT_KEY: VALUE(S)")
            when = {str(k): (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in when.items()}
    if isinstance(spec, (list, tuple)):
        spec = {"values": list(spec)}
    if not isinstance(spec, dict):
        return Entry(key, "fixed", values=[spec], when=when)
    keys = set(spec)
    if keys <= _FIXED_KEYS and "value" in keys:
        return Entry(key, "fixed", values=[spec["value"]], when=when)
    if keys <= _CHOICE_KEYS and "values" in keys:
        values = spec["values"]
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"search space entry {key!r}: 'values' must be a non-empty list")
        if len({type(v) for v in values}) > 1 and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          for v in values):
            raise ConfigError(f"search space entry {key!r}: the values of a choice must share one type; "
                              f"received {values!r}")
        if len(set(map(json.dumps, values))) != len(values):
            raise ConfigError(f"search space entry {key!r}: a value is listed twice in {values!r}")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and \
                any(isinstance(v, float) for v in values):
            values = [float(v) for v in values]
        return Entry(key, "choice", values=list(values), when=when)
    if keys <= _RANGE_KEYS and {"min", "max"} <= keys:
        lo, hi, step = spec["min"], spec["max"], spec.get("step")
        for name, v in (("min", lo), ("max", hi), ("step", step)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise ConfigError(f"search space entry {key!r}: {name} must be a number; received {v!r}")
        if not lo < hi:
            raise ConfigError(f"search space entry {key!r}: min must be below max; received {lo} and {hi}")
        sampling = str(spec.get("sampling", "linear"))
        if sampling not in ("linear", "log", "reverse_log"):
            raise ConfigError(f"search space entry {key!r}: sampling must be linear, log or reverse_log; "
                              f"received {sampling!r}")
        if sampling != "linear" and lo <= 0:
            raise ConfigError(f"search space entry {key!r}: {sampling} sampling needs min > 0; received {lo}")
        if step is not None and step <= 0:
            raise ConfigError(f"search space entry {key!r}: step must be > 0; received {step}")
        is_int = all(isinstance(v, int) for v in (lo, hi)) and (step is None or isinstance(step, int))
        return Entry(key, "int" if is_int else "float", min=lo, max=hi, step=step, sampling=sampling, when=when)
    raise ConfigError(f"search space entry {key!r}: expected a value, a list of values, {{values: [...]}}, or "
                      f"{{min, max[, step, sampling]}} (each with an optional 'when'); received keys {sorted(keys)}")


def load_space(space: str | os.PathLike | dict | None) -> list[Entry]:
    """Parse a space (a YAML path, a mapping, or None for :data:`DEFAULT_SPACE`)."""
    if space is None:
        raw = DEFAULT_SPACE
    elif isinstance(space, dict):
        raw = space
    else:
        raw = read_yaml(space)
        if isinstance(raw, dict) and set(raw) == {"space"}:
            raw = raw["space"]
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"a search space is a non-empty mapping of config keys to values; received {raw!r}")
    entries = [_entry(k, v) for k, v in raw.items()]
    seen: dict[str, Entry] = {}
    for e in entries:
        if e.when:
            (parent, values), = e.when.items()
            if parent not in seen:
                raise ConfigError(f"search space entry {e.key!r}: 'when' names {parent!r}, which is not an earlier "
                                  "entry of the space")
            p = seen[parent]
            if p.kind not in ("choice", "fixed"):
                raise ConfigError(f"search space entry {e.key!r}: 'when' needs {parent!r} to be a choice")
            missing = [v for v in values if v not in p.values]
            if missing:
                raise ConfigError(f"search space entry {e.key!r}: 'when' value(s) {missing} are not among "
                                  f"{parent!r}'s choices {p.values}")
        targets = {t for t in config_keys(e.key)}
        for other in seen.values():
            if targets & set(config_keys(other.key)):
                raise ConfigError(f"search space entry {e.key!r}: sets the same config key as {other.key!r}")
        seen[e.key] = e
    return entries


def apply_values(cfg: Config, values: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with the search values (``{space key: value}``) applied and validated."""
    cfg = copy.deepcopy(cfg)
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        for section, name in config_keys(key):
            nested.setdefault(section, {})[name] = value
    apply_dict(cfg, nested, origin="search values")
    validate(cfg)
    return cfg


def check_space(entries: list[Entry], base: Config, tuner: str) -> None:
    """Refuse a space that cannot run: a value the config rejects, or a continuous range in a
    grid search. Each value is tried on its own on top of ``base`` (with its parent's value
    when it is conditional)."""
    if tuner == "grid":
        check_grid_size(entries)
    for e in entries:
        context = {}
        if e.when:
            (parent, values), = e.when.items()
            context[parent] = values[0]
        for value in e.candidates():
            try:
                apply_values(base, {**context, e.key: value})
            except ConfigError as err:
                raise ConfigError(f"search space entry {e.key!r}: value {value!r} is refused: {err}") from None


def _num(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


def check_grid_size(entries: list[Entry]) -> None:
    """Refuse a grid KerasTuner could not list (it holds every value of an entry in memory):
    a continuous range, an entry past ``GRID_ENTRY_LIMIT`` values, a grid past ``GRID_LIMIT``
    points. Counted from the entries alone, before KerasTuner sees them."""
    total = 1
    for e in entries:
        n = e.count()
        if n is None:
            raise ConfigError(f"search space entry {e.key!r}: grid search needs discrete values: give the range a "
                              "step or list the values")
        if n > GRID_ENTRY_LIMIT:
            what = "a list" if e.min is None else f"min {_num(e.min)}, max {_num(e.max)}, step {_num(e.step or 1)}"
            raise ConfigError(f"search space: {e.key} has {n:,} values ({what}); grid search is limited to "
                              f"{GRID_ENTRY_LIMIT:,} values per entry: use a larger step or --tuner random")
        total *= n
    if total > GRID_LIMIT:
        counts = " x ".join(f"{e.key} {e.count():,}" for e in entries if e.count() > 1)
        raise ConfigError(f"search space: the grid has {total:,} points ({counts}); grid search is limited to "
                          f"{GRID_LIMIT:,} points: use larger steps, fewer values or --tuner random")


def declare(hp, entries: list[Entry]) -> dict[str, Any]:
    """Declare ``entries`` on a KerasTuner ``HyperParameters``; return the active values."""
    values: dict[str, Any] = {}

    def one(e: Entry):
        if e.kind == "fixed":
            return hp.Fixed(e.key, e.values[0])
        if e.kind == "choice":
            return hp.Choice(e.key, e.values, ordered=all(isinstance(v, (int, float)) for v in e.values))
        if e.kind == "int":
            return hp.Int(e.key, e.min, e.max, step=e.step, sampling=e.sampling)
        return hp.Float(e.key, e.min, e.max, step=e.step, sampling=e.sampling)

    for e in entries:
        if e.when:
            (parent, parent_values), = e.when.items()
            with hp.conditional_scope(parent, parent_values):
                value = one(e)
            if values.get(parent, object()) in parent_values:
                values[e.key] = value
        else:
            values[e.key] = one(e)
    return values


def fingerprint(entries: list[Entry]) -> list[dict]:
    """A JSON-able form of the space, compared on resume."""
    return [e.to_dict() for e in entries]
