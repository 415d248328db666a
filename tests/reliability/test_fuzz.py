"""Fuzzing (hypothesis): random argument lists over the real sub-commands and flags, and random
YAML configs, never end in a traceback: either the command runs, or it prints one line
``error: ...`` and exits non-zero. ``--help`` and ``--version`` exit 0.

Nothing fuzzed can start training: ``--demo`` and ``hub:`` presets are left out, and every
path is relative to an empty, deep working folder, so ``--data ..`` finds no images.
The number of cases run is printed (``pytest -s``) and stated in the README ("Reliability").
"""

import argparse
import contextlib
import io
import os
import traceback

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leafnet.cli import build_parser, main
from leafnet.config import SECTIONS, Config, load_config
from leafnet.errors import LeafnetError

ARGV_EXAMPLES = {"config": 500, "other": 300}
YAML_EXAMPLES = 600
COUNTS = {"argv": 0, "yaml": 0}
# commands that would do real work with valid arguments (generate images) are fuzzed with --help only
HELP_ONLY = {"data synth"}
EXCLUDED_FLAGS = {"--demo"}   # trains on the embedded leaves


def _commands() -> dict[str, list[tuple[str, bool]]]:
    """``{"fit": [(flag, takes_value), ...], "data check": [...], ...}`` from the real parser."""
    def options(p):
        return [(s, a.nargs != 0) for a in p._actions if a.option_strings for s in a.option_strings
                if s.startswith("--") and s not in EXCLUDED_FLAGS]

    out = {}
    for a in build_parser()._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, p in a.choices.items():
                subs = [x for x in p._actions if isinstance(x, argparse._SubParsersAction)]
                if subs:
                    for sub_name, sp in subs[0].choices.items():
                        out[f"{name} {sub_name}"] = options(sp)
                else:
                    out[name] = options(p)
    return out


COMMANDS = _commands()
KEYS = [f"{s}.{f}" for s, tp in SECTIONS.items() for f in getattr(Config(), s).__dataclass_fields__]

texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
numbers = st.one_of(st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["1e400", "-0", "nan", "inf", "0x10", "1_000", "3e-4", "1,2", "all", "true"]))
paths = st.lists(st.sampled_from(["..", ".", "x", "missing", "a b", "ü", ""]), min_size=1, max_size=4).map("/".join)
values = st.one_of(texts, numbers.map(str), paths, st.sampled_from(["", "-", "--", "-x", "=SUM(A1)", "none",
                                                                    "imagenet", "b0", "simple-cnn"]))
overrides = st.one_of(st.tuples(st.sampled_from(KEYS), values).map(lambda kv: f"{kv[0]}={kv[1]}"), texts)


@st.composite
def argvs(draw, commands):
    cmd = draw(st.sampled_from(commands))
    argv = cmd.split()
    if cmd in HELP_ONLY:
        return argv + ["--help"]
    flags = COMMANDS[cmd]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 9))
        if kind <= 6 and flags:
            flag, takes = draw(st.sampled_from(flags))
            argv.append(flag)
            if takes:
                argv.append(draw(overrides) if flag == "--set" else draw(values))
        else:
            argv.append(draw(values))
    return argv


@pytest.fixture(scope="module")
def deep_cwd(tmp_path_factory):
    """An empty folder 8 levels down: ``..`` chains stay in folders that hold no images."""
    root = tmp_path_factory.mktemp("fuzz")
    deep = root.joinpath(*[f"level{i}" for i in range(8)])
    deep.mkdir(parents=True)
    return deep


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``leafnet ARGV`` in-process; a traceback (any exception but a help/version exit) fails."""
    out, err = io.StringIO(), io.StringIO()
    env = dict(os.environ)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as e:   # argparse's --help / --version
        assert e.code == 0 and any(a in ("-h", "--help", "--version") for a in argv), (argv, e.code)
        code = 0
    except Exception:  # noqa: BLE001 - the point of the test
        pytest.fail(f"leafnet {argv!r} raised:\n{traceback.format_exc()}")
    finally:
        os.environ.clear()
        os.environ.update(env)    # search --distributed sets KerasTuner's variables
    return code, out.getvalue(), err.getvalue()


def check_outcome(argv, code, stdout, stderr):
    assert code in (0, 1, 2), (argv, code)
    if code == 2 and argv and argv[0] in COMMANDS or code == 2 and " ".join(argv[:2]) in COMMANDS:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: "), (argv, stderr)
        assert sum(line.startswith("error: ") for line in lines) == 1, (argv, stderr)
    assert "Traceback" not in stderr, (argv, stderr)


def fuzz_argv(commands, n, deep_cwd, monkeypatch):
    monkeypatch.chdir(deep_cwd)

    @settings(max_examples=n, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(argvs(commands))
    def case(argv):
        if any("demo" in a or a.startswith("hub:") for a in argv):
            return
        COUNTS["argv"] += 1
        check_outcome(argv, *run_main(argv))

    case()
    assert os.listdir(deep_cwd.parents[7]) == ["level0"]      # nothing written beside the chain


def test_fuzz_config_command_argv(deep_cwd, monkeypatch):
    fuzz_argv(["config"], ARGV_EXAMPLES["config"], deep_cwd, monkeypatch)


def test_fuzz_every_command_argv(deep_cwd, monkeypatch):
    fuzz_argv(sorted(c for c in COMMANDS if c != "config"), ARGV_EXAMPLES["other"], deep_cwd, monkeypatch)


def test_help_and_version_exit_0():
    for argv in [["--help"], ["--version"]] + [c.split() + ["--help"] for c in COMMANDS]:
        code, out, err = run_main(argv)
        assert code == 0 and out and not err, argv


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.sampled_from([10**400, -10**400]),
                         st.floats(allow_nan=True, allow_infinity=True), texts, paths,
                         st.sampled_from(["", "../../etc/passwd", "..", "/", "~", "all", "3e-4", "1,2,3"]))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                  st.dictionaries(texts, inner, max_size=3)), max_leaves=6)


@st.composite
def yaml_configs(draw):
    if draw(st.integers(0, 9)) == 0:                     # not a mapping, or not YAML at all
        return draw(st.one_of(yaml_values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)), texts))
    cfg = {}
    for section in draw(st.lists(st.one_of(st.sampled_from(list(SECTIONS)), texts), max_size=4)):
        if draw(st.booleans()) and section in SECTIONS:
            fields = list(getattr(Config(), section).__dataclass_fields__)
            keys = draw(st.lists(st.one_of(st.sampled_from(fields), texts), max_size=5))
            cfg[section] = {k: draw(yaml_values) for k in keys}
        else:
            cfg[section] = draw(yaml_values)
    return yaml.safe_dump(cfg, allow_unicode=True)


def test_fuzz_yaml_configs(tmp_path):
    path = tmp_path / "c.yaml"

    @settings(max_examples=YAML_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(yaml_configs())
    def case(text):
        COUNTS["yaml"] += 1
        path.write_text(text, encoding="utf-8")
        try:
            valid = isinstance(load_config(path), Config)
        except LeafnetError as e:     # anything else is a traceback, and fails
            valid = not str(e)
        code, out, err = run_main(["config", "--config", str(path)])
        if valid:
            assert code == 0 and "transfer:" in out and not err, (text, err)
        else:
            assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (text, err)

    case()


@pytest.mark.parametrize("text", ["[" * 5000, "a: " + "[" * 3000 + "]" * 3000, "{" * 4000,
                                  "transfer: {lr: " + "9" * 500 + "}", "transfer:\n  epochs: 1e400\n",
                                  "model: {weights: !!python/object/apply:os.system [echo hi]}\n",
                                  "data: {data: !!binary aGk=}\n", "\x00", "data: &a [*a]\n"])
def test_hostile_yaml_is_one_error(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with pytest.raises(LeafnetError):
        load_config(path)
    code, out, err = run_main(["config", "--config", str(path)])
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err


def test_report_fuzz_counts(capsys):
    """Runs last in this file: prints the number of fuzz cases for the README."""
    with capsys.disabled():
        print(f"\nfuzz cases run: argv {COUNTS['argv']}, yaml {COUNTS['yaml']}")
    assert COUNTS["argv"] >= 700 and COUNTS["yaml"] == YAML_EXAMPLES
