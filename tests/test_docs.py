"""Every command and Python snippet that README.md and docs/ show runs, on tiny data.

A ``leafnet ...`` line of a ``bash`` code block (also the ``.venv/bin/leafnet`` part of an
install line) is run through the real command line, in order, in one working folder that
holds the folders the docs name (``my_images/``, ``train_dir/``, ``photos/``, ...). A
``python`` block is executed as it is. What changes for the tests' sake is listed in
:data:`SUBSTITUTIONS` and :func:`tiny`, and nowhere else. A line whose comment says it
needs the network or several machines (``# needs: ...``) is only parsed with the real
parser. Blocks in other languages (``text``: synopses, folder trees) are not commands.
"""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The order the commands run in: README.md first (its demo fit makes runs/demo, which the
# docs' evaluate, export and explain commands use), then docs/ by name. A command may use a
# run folder an earlier one made; test_every_used_run_folder_is_made_earlier checks that.
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TRAINING = {"fit", "search", "cv", "pretext", "lr-find", "config"}

# flag -> value that replaces the documented one (same meaning, seconds instead of hours)
SUBSTITUTIONS = {
    "--max-trials": "2",            # a search of 20 trials
    "--folds": "2",                 # 5-fold cross-validation
    "--steps": "3",                 # inversions and lr-find: hundreds of optimisation steps
    # the EfficientNets train in tests/models and tests/train; here the simple CNN stands in
    "--backbone": {"b4": "simple-cnn", "b0": "simple-cnn"},
}
# appended to every training command: 32 px, one epoch a phase, small batches
TINY = ["--image-size", "32", "--epochs", "1", "--finetune-epochs", "1", "--batch-size", "16"]
# appended to other commands whose defaults run for minutes
APPENDED = {"inversions": ["--steps", "3"]}


def code_blocks(path: Path) -> list[tuple[str, int, str]]:
    """``(language, first line number, text)`` of each fenced block of a Markdown file."""
    blocks, lang, start, lines = [], None, 0, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```\s*([\w+-]*)", line)
        if fence and lang is None:
            lang, start, lines = fence.group(1) or "", n + 1, []
        elif fence:
            blocks.append((lang, start, "\n".join(lines)))
            lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def documented_commands(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, leafnet argv as text, comment)`` of every command of the bash blocks."""
    out = []
    for lang, start, text in code_blocks(path):
        if lang not in ("bash", "sh", "shell", "console"):
            continue
        joined = re.sub(r"\\\n\s*", " ", text)
        for offset, line in enumerate(joined.splitlines()):
            for part in line.split("&&"):
                m = re.match(r"^\s*(?:\$\s*)?(?:\S*/)?leafnet\s+(.*)$", part)
                if m:
                    body, _, comment = m.group(1).partition(" #")
                    out.append((start + offset, body.strip(), comment.strip()))
    return out


def python_snippets(path: Path) -> list[tuple[int, str]]:
    return [(start, text) for lang, start, text in code_blocks(path) if lang == "python"]


def tiny(argv: list[str]) -> list[str]:
    """The documented command with :data:`SUBSTITUTIONS` and, for training, :data:`TINY`."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        rule = SUBSTITUTIONS.get(arg)
        if isinstance(rule, dict):
            out[i + 1] = rule.get(out[i + 1], out[i + 1])
        elif rule is not None:
            out[i + 1] = rule
    if out and out[0] in APPENDED and not set(APPENDED[out[0]][::2]) & set(out):
        out += APPENDED[out[0]]
    if out and out[0] in TRAINING:
        out += TINY
        if "--weights" not in out:
            out += ["--weights", "none"]     # no ImageNet download here
        if "--config" in out and "--data" not in out and "--train" not in out:
            out += ["--data", "my_images"]   # the tiny folder instead of the 1,400 demo leaves
    return out


def needs_outside(comment: str) -> bool:
    return comment.startswith("needs:")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A working folder holding every folder and file the docs' commands name."""
    from PIL import Image

    from leafnet.datasets import generate

    ws = tmp_path_factory.mktemp("docs")
    (ws / "configs").symlink_to(ROOT / "configs", target_is_directory=True)   # as in a clone
    generate(ws / "my_images", classes=3, per_class=14, size=40, seed=1)
    for name in ("leaves", "photos"):
        (ws / name).symlink_to(ws / "my_images", target_is_directory=True)
    generate(ws / "train_dir", classes=3, per_class=10, size=40, seed=2)
    generate(ws / "val_dir", classes=3, per_class=4, size=40, seed=3)
    generate(ws / "new_photos", classes=2, per_class=3, size=40, seed=4)
    first = sorted((ws / "new_photos").rglob("*.png"))
    for i, src in enumerate(first[:2], 1):
        Image.open(src).convert("RGB").save(ws / f"leaf{i}.jpg")
    return ws


def _run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    import contextlib
    import io
    import os

    from leafnet.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_documented_command_parses(doc):
    """Cheap and complete: each documented line, as written, is accepted by the real parser."""
    from leafnet.cli import build_parser

    commands = documented_commands(doc)
    for line, text, _ in commands:
        try:
            build_parser().parse_args(shlex.split(text))
        except Exception as e:  # noqa: BLE001 - report the line
            pytest.fail(f"{doc.name}:{line}: `leafnet {text}` does not parse: {e}")


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_documented_command_runs(doc, workspace, monkeypatch):
    """Each documented command, in the order shown, exits 0 and prints no error."""
    monkeypatch.setenv("LEAFNET_CACHE", str(workspace / "cache"))
    failures = []
    for line, text, comment in documented_commands(doc):
        if needs_outside(comment):
            continue   # parsed in test_every_documented_command_parses
        argv = tiny(shlex.split(text))
        t0 = time.perf_counter()
        code, out, err = _run(argv, workspace)
        print(f"{time.perf_counter() - t0:6.1f}s  leafnet {shlex.join(argv)}")
        if code != 0 or "error:" in err:
            failures.append(f"{doc.name}:{line}: `leafnet {shlex.join(argv)}` exited {code}: "
                            f"{(err or out).strip()[-600:]}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_snippet_runs(doc, workspace, monkeypatch):
    """Each ``python`` block runs as shown; ``leafnet.fit`` trains with :data:`TINY`'s settings."""
    import leafnet

    fit = leafnet.fit

    def tiny_fit(config=None, **flags):
        flags = {"data.image_size": 32, "transfer.epochs": 1, "finetune.epochs": 1, "data.batch_size": 16,
                 "model.weights": "none", "model.backbone": "simple-cnn", **flags}
        return fit(config, **flags)

    monkeypatch.setattr(leafnet, "fit", tiny_fit)
    monkeypatch.chdir(workspace)
    for line, code in python_snippets(doc):
        try:
            exec(compile(code, f"{doc.name}:{line}", "exec"), {"__name__": "__docs__"})
        except Exception as e:  # noqa: BLE001 - report the snippet
            pytest.fail(f"{doc.name}:{line}: the Python snippet fails: {type(e).__name__}: {e}")


def test_the_tests_see_the_documented_commands():
    """The extraction itself: commands are found, joined across ``\\`` and ``&&``."""
    found = [text for _, text, _ in documented_commands(ROOT / "README.md")]
    assert any(t.startswith("fit --config configs/demo.yaml") for t in found)       # after `.venv/bin/` and &&
    recipe_page = [text for _, text, _ in documented_commands(ROOT / "docs" / "recipe.md")]
    recipe = next(t for t in recipe_page if "--optimizer ranger" in t)
    assert recipe.endswith("--set finetune.lr=1e-5")                                 # three lines joined
    assert tiny(["search", "--max-trials", "20", "--backbone", "b4"])[:5] == [
        "search", "--max-trials", "2", "--backbone", "simple-cnn"]


def _run_root(path: str) -> str | None:
    """``runs/NAME`` of a path inside a run folder (``runs/search/best.yaml`` -> ``runs/search``)."""
    parts = Path(path).parts
    return "/".join(parts[:2]) if len(parts) >= 2 and parts[0] == "runs" else None


def test_every_used_run_folder_is_made_earlier():
    """In the order the tests run them, a command that reads ``runs/X`` comes after the one
    whose ``--run-dir runs/X`` made it, so moving text between pages cannot break a run."""
    made: set[str] = set()
    missing = []
    for doc in DOCS:
        for line, text, comment in documented_commands(doc):
            if needs_outside(comment):
                continue
            argv = shlex.split(text)
            outputs = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--run-dir"}
            for i, arg in enumerate(argv):
                root = _run_root(arg)
                if root and not (i and argv[i - 1] == "--run-dir") and root not in made:
                    missing.append(f"{doc.relative_to(ROOT)}:{line}: `leafnet {text}` reads {root}, "
                                   "which no earlier command makes")
            made |= {r for r in map(_run_root, outputs) if r}
    assert not missing, "\n".join(missing)


def test_ci_command_is_the_readme_block_after_the_marker():
    """.ci/run takes the first line of the fenced block after the ``ci:test-command`` marker."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if "ci:test-command" in line)
    assert lines[at + 1].startswith("```")
    assert lines[at + 2] == ('python3 -m venv .venv && .venv/bin/pip install -e ".[test]" '
                             "&& .venv/bin/python -m pytest")


def test_config_reference_is_current():
    """docs/config.md is what tools/config_reference.py renders from `leafnet config` now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "tools" / "config_reference.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    page = ROOT / "docs" / "config.md"
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    assert current == tool.render(tool.config_output()), (
        "docs/config.md differs from `leafnet config`: run `python tools/config_reference.py` "
        "and commit docs/config.md")


def test_mkdocs_site_builds_strict(tmp_path):
    """`mkdocs build --strict`: every page in the nav, no broken link or anchor, no warning."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml",
                           "-d", str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{log[-3000:]}"
    assert "WARNING" not in log, f"mkdocs build warned:\n{log[-3000:]}"
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").rglob("*.md")):
        assert f" {page.relative_to(ROOT / 'docs').as_posix()}\n" in nav, f"{page} is not in mkdocs.yml's nav"
