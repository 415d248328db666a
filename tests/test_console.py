"""What a person reads: a log without escape codes, no TensorFlow noise, a summary at the end."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest

# TensorFlow's and libjpeg's own lines, none of which a leafnet user can act on
NOISE = ("All log messages before absl::InitializeLog", "oneDNN", "cpu_feature_guard", "cudart_stub",
         "cuInit", "I0000", "E0000", "W0000", "This TensorFlow binary is optimized", "Input file read error",
         "unknown JFIF revision")


def _env():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    return env


def _leafnet(*args, cwd):
    return subprocess.run([sys.executable, "-m", "leafnet", *map(str, args)], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_log_file_gets_one_plain_line_per_epoch_and_a_summary(leaves, tmp_path):
    args = ("fit", "--data", leaves, "--backbone", "simple-cnn", "--image-size", "32", "--epochs", "2",
            "--finetune-epochs", "1", "--run-dir", "runs/log")
    p = _leafnet(*args, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "\r" not in p.stdout and "\x1b" not in p.stdout      # stdout is a pipe here, as under nohup or CI
    assert [line for line in p.stderr.splitlines() if any(n in line for n in NOISE)] == []
    history = list(csv.DictReader(open(tmp_path / "runs/log/history.csv")))
    epoch_lines = [line for line in p.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == len(history) == 3
    for line, row in zip(epoch_lines, history):
        assert line.startswith(f"epoch {row['epoch']} ({row['phase']} {row['phase_epoch']}/")
        assert f"val_accuracy {float(row['val_accuracy']):.4f}" in line
    m = json.loads((tmp_path / "runs/log/metrics.json").read_text())
    summary = p.stdout[p.stdout.index("simple-cnn at 32 px"):]
    assert f"val accuracy {m['val_accuracy']:.2%}" in summary
    assert f"mean per-class accuracy {m['mean_class_accuracy']:.2%}" in summary
    for command in ("evaluate runs/log", "report runs/log", "predict runs/log IMAGES... --out preds.csv",
                    "export runs/log --format savedmodel"):
        assert f"  leafnet {command}" in summary
    again = _leafnet(*args, cwd=tmp_path)                        # a finished run: the same summary
    assert again.returncode == 0 and "already complete" in again.stdout
    assert again.stdout.endswith(summary)


@pytest.mark.slow
def test_a_script_that_imports_leafnet_sees_no_tensorflow_noise(leaves, tmp_path):
    script = textwrap.dedent(f"""
        import leafnet
        run = leafnet.fit({{"data": {{"data": {str(leaves)!r}, "image_size": 32}},
                           "model": {{"backbone": "simple-cnn"}}, "transfer": {{"epochs": 1}},
                           "finetune": {{"epochs": 0}}, "run": {{"dir": "run", "verbose": 0}}}})
        print(type(run.history[0]["epoch"]).__name__, type(run.history[0]["val_loss"]).__name__)
    """)
    p = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    assert [line for line in p.stderr.splitlines() if any(n in line for n in NOISE)] == []
    assert p.stdout.split() == ["int", "float"]                  # Run.history holds numbers


def test_progress_bars_only_on_a_terminal(monkeypatch):
    import io

    from leafnet import console

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    bar = console.progress_bar(10)
    bar.update(5)
    assert sys.stdout.getvalue() == ""
    monkeypatch.setattr(sys, "stdout", Tty())
    assert console.interactive()
    assert type(console.progress_bar(10)).__name__ == "Progbar"


def test_the_mixing_augmentations_are_said():
    from leafnet.config import AugmentConfig
    from leafnet.train.trainer import mixing_summary

    assert mixing_summary(AugmentConfig()) == ""
    assert mixing_summary(AugmentConfig(mixup=0.2, cutmix=1.0, mix_off_epochs=2, randaugment=2)) == (
        "MixUp (alpha 0.2); CutMix (alpha 1), off for the last 2 epoch(s) of each phase; "
        "RandAugment (2 operations per image, strength 0.5)")


def _print_output(capsys, *args, **kw):
    print(*args, **kw)
    return capsys.readouterr()


def test_the_console_writes_what_print_wrote(capsys):
    from leafnet import console

    for text in ("plain", "95% of 10 %s", "two\nlines", "", "naïve — ünïcode"):
        console.info(text)
        assert capsys.readouterr() == _print_output(capsys, text)
        console.note(text)
        assert capsys.readouterr() == _print_output(capsys, f"note: {text}")
        console.warn(text)
        assert capsys.readouterr() == _print_output(capsys, f"warning: {text}", file=sys.stderr)
        console.error(text)
        assert capsys.readouterr() == _print_output(capsys, f"error: {text}", file=sys.stderr)
    console.error("\ninterrupted", prefix="")
    assert capsys.readouterr().err == "\ninterrupted\n"


def test_quiet_drops_info_and_notes_but_not_warnings(capsys):
    from leafnet import console

    with console.quiet():
        console.info("hidden")
        console.note("hidden")
        console.warn("shown")
        console.error("shown")
    console.info("after")
    with console.quiet(False):
        console.info("not quiet")
    out = capsys.readouterr()
    assert out.out == "after\nnot quiet\n"
    assert out.err == "warning: shown\nerror: shown\n"


def test_the_console_writes_to_the_streams_of_the_moment_and_lets_a_broken_pipe_through(monkeypatch):
    import io

    from leafnet import console

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    console.info("to out")
    console.warn("to err")
    assert (out.getvalue(), err.getvalue()) == ("to out\n", "warning: to err\n")

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    with pytest.raises(BrokenPipeError):
        console.info("lost")
    assert "Logging error" not in err.getvalue()


def test_a_program_that_configures_the_leafnet_logger_keeps_its_handlers(monkeypatch, capsys):
    import logging

    from leafnet import console

    log = logging.getLogger("leafnet")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    monkeypatch.setattr(log, "handlers", [Keep()])
    saved = log.level
    log.setLevel(logging.INFO)   # the program's choice, as logging.basicConfig(level=...) makes it
    try:
        console.info("to the program's handler")
    finally:
        log.setLevel(saved)
    assert records == ["to the program's handler"]
    assert capsys.readouterr().out == ""
