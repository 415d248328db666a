"""``--help`` as a person reads it: every flag explained, readable metavars, the config's defaults
and choices, examples that run, and a shell completion script."""

import argparse
import dataclasses
import shlex
import subprocess
import sys
from fractions import Fraction

import pytest

from leafnet.cli import TRAIN_FLAGS, build_parser
from leafnet.config import SECTIONS, Config


def _parsers(parser, path=("leafnet",)):
    """``(command path, parser)`` for the root parser and every sub-parser, recursively."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


PARSERS = list(_parsers(build_parser()))
TRAIN_PARSERS = [(path, p) for path, p in PARSERS if any("--batch-size" in a.option_strings for a in p._actions)]


def _entry(parser, action) -> str:
    """What ``--help`` says of ``action`` (its flag, metavar and help), on one line."""
    formatter = parser.formatter_class(parser.prog, width=10_000)
    formatter.add_argument(action)
    return " ".join(formatter.format_help().split())


def _action(parser, flag):
    return next(a for a in parser._actions if flag in a.option_strings)


def _field(key):
    section, name = key.split(".")
    obj = getattr(Config(), section)
    return getattr(obj, name), {f.name: f for f in dataclasses.fields(obj)}[name].metadata


def _keys(flag):
    keys = TRAIN_FLAGS[flag][0]
    return (keys,) if isinstance(keys, str) else keys


@pytest.mark.parametrize("path, parser", PARSERS, ids=[" ".join(p) for p, _ in PARSERS])
def test_every_flag_and_argument_is_explained(path, parser):
    missing = [a.option_strings[0] if a.option_strings else a.dest for a in parser._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
               and not (a.help or "").strip()]
    assert missing == []


@pytest.mark.parametrize("path, parser", PARSERS, ids=[" ".join(p) for p, _ in PARSERS])
def test_no_metavar_is_a_config_key(path, parser):
    shown = [parser._get_formatter()._format_action_invocation(a) for a in parser._actions if a.option_strings]
    bad = [s for s in shown if "+" in s or any(f"{section.upper()}." in s for section in SECTIONS)]
    assert bad == []
    if any("--lr" in a.option_strings for a in parser._actions):
        assert "--lr X" in shown


@pytest.mark.parametrize("path, parser", TRAIN_PARSERS, ids=[" ".join(p) for p, _ in TRAIN_PARSERS])
def test_train_flags_list_the_config_choices(path, parser):
    checked = 0
    for flag in TRAIN_FLAGS:
        choices = _field(_keys(flag)[0])[1].get("choices")
        if not choices:
            continue
        entry = _entry(parser, _action(parser, flag))
        assert "{" + ",".join(choices) + "}" in entry or "one of: " + ", ".join(choices) in entry, entry
        checked += 1
    assert checked >= 7  # optimizer, loss, schedule, balance, precision, distribute, cache-features


def _shown_defaults(value) -> set[str]:
    """The ways a person may read ``value`` as written in help."""
    if isinstance(value, bool):
        return {str(value).lower()}
    if isinstance(value, float):
        frac = Fraction(value).limit_denominator(100)
        return {f"{value:g}", f"{value:.3g}", f"{frac.numerator}/{frac.denominator}"}
    return {str(value)}


@pytest.mark.parametrize("path, parser", TRAIN_PARSERS, ids=[" ".join(p) for p, _ in TRAIN_PARSERS])
def test_train_flags_show_the_config_default(path, parser):
    for flag in TRAIN_FLAGS:
        defaults = {_field(k)[0] for k in _keys(flag)}
        if defaults == {None}:
            continue
        entry = _entry(parser, _action(parser, flag))
        assert len(defaults) == 1, flag
        assert any(f"default: {s})" in entry or f"default: {s};" in entry
                   for s in _shown_defaults(defaults.pop())), entry
    cfg = Config()
    assert f"default: {cfg.data.batch_size})" in _entry(parser, _action(parser, "--batch-size"))
    assert f"default: {cfg.transfer.optimizer})" in _entry(parser, _action(parser, "--optimizer"))
    assert f"default: {cfg.finetune.lr:g})" in _entry(parser, _action(parser, "--finetune-lr"))
    val_split = _entry(parser, _action(parser, "--val-split"))
    assert cfg.data.val_split == 1 / 6 and ("default: 1/6)" in val_split or "default: 0.167)" in val_split)
    # a default the config leaves unset is explained in the config's own words
    assert "(default: the backbone's default)" in _entry(parser, _action(parser, "--image-size"))
    # and argparse's own default stays None, so a --config file is not overridden
    assert {_action(parser, f).default for f in TRAIN_FLAGS} == {None}


def _examples(parser) -> list[str]:
    return [line.strip() for line in (parser.epilog or "").splitlines() if line.strip().startswith("leafnet ")]


@pytest.mark.parametrize("path, parser", PARSERS, ids=[" ".join(p) for p, _ in PARSERS])
def test_every_command_shows_examples_that_parse(path, parser):
    lines = _examples(parser)
    assert lines, f"{' '.join(path)} has no example"
    shown = [line.strip() for line in parser.format_help().splitlines()]
    for line in lines:
        assert line in shown, f"example not on a line of its own in --help: {line}"
        argv = shlex.split(line)
        assert tuple(argv[:len(path)]) == path, line
        build_parser().parse_args(argv[1:])  # a flag that does not exist raises LeafnetError


def test_argparse_defaults_are_shown_where_they_mean_something():
    parser = dict((" ".join(p), x) for p, x in PARSERS)
    # the walk the other tests use reaches every command, and sees the train flags where they are
    assert {"leafnet data synth", "leafnet data check", "leafnet search", "leafnet cv", "leafnet pretext",
            "leafnet explain", "leafnet inversions", "leafnet filters", "leafnet report"} <= set(parser)
    assert {" ".join(path) for path, _ in TRAIN_PARSERS} == {"leafnet fit", "leafnet config", "leafnet lr-find",
                                                             "leafnet search", "leafnet cv", "leafnet pretext"}
    assert "(default: 100)" in _entry(parser["leafnet lr-find"], _action(parser["leafnet lr-find"], "--steps"))
    assert "(default: 14)" in _entry(parser["leafnet data synth"], _action(parser["leafnet data synth"], "--classes"))
    inv = parser["leafnet inversions"]
    from leafnet.explain.inversion import InversionSettings

    assert f"(default: {InversionSettings().steps})" in _entry(inv, _action(inv, "--steps"))
    for flag in ("--quiet", "--set", "--demo"):
        assert "default" not in _entry(parser["leafnet fit"], _action(parser["leafnet fit"], flag))


def test_print_completion_bash_is_a_valid_script():
    code = ("import sys\nfrom leafnet.cli import main\ntry:\n    main(['--print-completion', 'bash'])\n"
            "except SystemExit as e:\n    print('EXIT', e.code, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    script, _, status = out.stdout.rpartition("EXIT")
    assert status.split() == ["0", "False"], out.stderr  # exits 0, without importing TensorFlow
    assert "--finetune-blocks" in script and "--print-completion" in script
    assert any(line.startswith("complete ") and line.endswith(" -F _shtab_leafnet leafnet")
               for line in script.splitlines())
    # what bash offers for `leafnet fit --finetune-b<TAB>` and `leafnet ex<TAB>`
    complete = ("source /dev/stdin\n"
                "COMP_WORDS=(leafnet fit --finetune-b); COMP_CWORD=2; _shtab_leafnet; echo \"${COMPREPLY[*]}\"\n"
                "COMP_WORDS=(leafnet ex); COMP_CWORD=1; _shtab_leafnet; echo \"${COMPREPLY[*]}\"\n")
    offered = subprocess.run(["bash", "-c", complete], input=script, capture_output=True, text=True)
    assert offered.stdout.splitlines() == ["--finetune-blocks", "export explain"], offered.stderr
