"""Shared fixtures: tiny synthetic leaf folders, a CLI runner, small fit configs."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def leaves(tmp_path_factory):
    """4 species x 30 images at 48 px (the tests' standard labelled folder)."""
    from leafnet.datasets import generate

    root = tmp_path_factory.mktemp("leaves") / "leaves"
    generate(root, classes=4, per_class=30, size=48, seed=1)
    return root


@pytest.fixture
def run_cli(capsys):
    """Run ``leafnet ARGS...`` in-process; return (exit code, stdout, stderr)."""
    from leafnet.cli import main

    def run(*args: str):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(data, run_dir, section__key=value, ...)``: see :func:`make_tiny_config`."""
    return make_tiny_config


def make_tiny_config(data, run_dir, **over):
    """A fit config that trains in seconds: simple-cnn at 32 px, a few epochs."""
    cfg = {
        "data": {"data": str(data), "image_size": 32, "batch_size": 16},
        "model": {"backbone": "simple-cnn", "weights": "none", "dropout": 0.2},
        "transfer": {"epochs": 3, "lr": 3e-3, "early_stopping": 0},
        "finetune": {"epochs": 2, "lr": 3e-4, "blocks": 2, "early_stopping": 0},
        "run": {"dir": str(run_dir), "seed": 7, "verbose": 0},
    }
    for dotted, value in over.items():
        section, key = dotted.split("__")
        cfg.setdefault(section, {})[key] = value
    return cfg


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory, leaves, tiny_config):
    """``(Run, run_dir)``: one tiny run trained once per session, shared by the evaluate,
    predict and export tests (which only read it)."""
    import leafnet

    run_dir = tmp_path_factory.mktemp("shared_run") / "run"
    return leafnet.fit(tiny_config(leaves, run_dir)), run_dir
