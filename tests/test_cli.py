"""The command line: one-line errors with exit status 2, and the data tools."""

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args, fragment", [
    (["fit", "--data", "/nonexistent/folder", "--weights", "none"], "data folder not found: /nonexistent/folder"),
    (["fit", "--demo", "--backbone", "efficientnet-b9"], "unknown backbone 'efficientnet-b9'"),
    (["fit", "--demo", "--set", "transfer.lrr=1"], "unknown config key 'transfer.lrr' (did you mean transfer.lr?)"),
    (["fit", "--demo", "--set", "transfer.lr"], "--set expects section.key=value"),
    (["fit", "--demo", "--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
    (["fit", "--demo", "--finetune-blocks", "-2"], "expected an integer >= 0 or 'all'"),
    (["fit", "--demo", "--val-split", "1.5"], "data.val_split must be < 1"),
    (["fit", "--bogus"], "unrecognized arguments: --bogus"),
    (["fit", "--weights", "none"], "no data given"),
    (["fit", "--config", "/nonexistent.yaml"], "config file not found"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_user_errors_are_one_line_and_exit_2(run_cli, args, fragment):
    code, out, err = run_cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]


def test_too_many_finetune_blocks_refused_before_training(run_cli, leaves, tmp_path):
    code, out, err = run_cli("fit", "--data", leaves, "--backbone", "simple-cnn", "--weights", "none",
                             "--finetune-blocks", "9", "--run-dir", tmp_path / "r", "--quiet")
    assert code == 2
    assert "finetune.blocks=9 but simple-cnn has 5 blocks" in err
    assert not (tmp_path / "r" / "backup" / "state.json").exists()


def test_a_real_subprocess_error_has_no_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "leafnet", "fit", "--data", str(tmp_path / "missing")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == f"error: data folder not found: {tmp_path / 'missing'}"


def test_data_synth_and_check(run_cli, tmp_path):
    code, out, err = run_cli("data", "synth", tmp_path / "s", "--classes", "3", "--per-class", "4", "--size", "32")
    assert code == 0 and "wrote 12 images of 3 species" in out
    first = sorted((tmp_path / "s").iterdir())[0]
    img = sorted(first.iterdir())[0]
    (first / "copy.png").write_bytes(img.read_bytes())
    (first / "broken.jpg").write_bytes(b"nope")
    code, out, err = run_cli("data", "check", tmp_path / "s", "--json", tmp_path / "r.json")
    assert code == 0
    assert "13 usable images in 3 classes, 1 file(s) skipped" in out
    assert "1 group(s) of byte-identical images" in out
    assert "(0 group(s) across train/val)" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["found"] == 14 and len(report["duplicates"]) == 1


def test_data_check_flags_an_unusable_folder(run_cli, tmp_path):
    (tmp_path / "d" / "only").mkdir(parents=True)
    code, out, err = run_cli("data", "check", tmp_path / "d")
    assert code == 1 and "cannot be trained on" in out


def test_synth_bad_arguments_are_one_line(run_cli, tmp_path):
    code, out, err = run_cli("data", "synth", tmp_path / "s", "--classes", "40")
    assert code == 2 and err.startswith("error: classes must be") and "received classes=40" in err


def test_config_prints_the_resolved_config(run_cli):
    code, out, err = run_cli("config", "--backbone", "b4", "--set", "finetune.blocks=all")
    assert code == 0
    assert "backbone: efficientnet-b4" in out or "backbone: b4" in out
    assert "blocks: all" in out


def test_backbones_lists_the_registry(run_cli):
    code, out, err = run_cli("backbones")
    assert code == 0 and "efficientnet-b4" in out and "380" in out and "simple-cnn" in out


def test_offline_imagenet_is_refused_before_the_run_folder_exists(run_cli, leaves, tmp_path, monkeypatch):
    import socket

    def no_network(*a, **k):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    code, out, err = run_cli("fit", "--data", leaves, "--backbone", "b0", "--image-size", "32",
                             "--run-dir", tmp_path / "r", "--quiet")
    assert code == 2 and "could not download ImageNet weights" in err and "--weights none" in err
    assert not (tmp_path / "r").exists()
