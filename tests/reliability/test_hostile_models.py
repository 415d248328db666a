"""Hostile or damaged model files and run folders: one line, quickly, and nothing allocated.

A weights file declaring a huge dataset, a zip bomb posing as a ``.keras`` model, a damaged
``model.keras``, a val image damaged after training and a hand-edited ``config.yaml``.
"""

import html
import json
import os
import resource
import shutil
import time
import zipfile

import h5py
import keras
import numpy as np
import pytest
import yaml

from leafnet.config import ModelConfig
from leafnet.errors import LeafnetError
from leafnet.models.classifier import build_classifier
from leafnet.models.registry import get_backbone
from leafnet.models.weights import keras_save_keys, load_backbone_weights
from leafnet.runs import read_csv, write_csv

pytestmark = pytest.mark.slow     # the shared tiny run trains once per session (~30 s)


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux: KiB


def copy_run(run_dir, dst, with_data=False):
    """A private copy of the shared run (its own eval/, export/ ...); with ``with_data`` the
    images too, split.csv pointing at the copies (so a test may damage one)."""
    shutil.copytree(run_dir, dst, ignore=shutil.ignore_patterns("eval", "export", "explain", "cache", "report*"))
    if with_data:
        rows = read_csv(dst / "split.csv")
        for r in rows:
            new = dst.parent / "data" / r["class"] / (r["subset"] + "_" + r["path"].rsplit("/", 1)[-1])
            new.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(r["path"], new)
            r["path"] = str(new)
        write_csv(dst / "split.csv", list(rows[0]), [list(r.values()) for r in rows])
        cfg = yaml.safe_load((dst / "config.yaml").read_text())
        cfg["data"]["data"] = str(dst.parent / "data")       # the copies are the run's data folder
        (dst / "config.yaml").write_text(yaml.safe_dump(cfg))
    return dst


def simple_cnn():
    keras.utils.set_random_seed(3)
    return build_classifier(get_backbone("simple-cnn"), 3, 32, ModelConfig(weights="none"))


# --------------------------------------------------------------------- weights files


@pytest.mark.parametrize("layout", ["keras3", "keras2"])
@pytest.mark.parametrize("n", [200_000, 40_000])
def test_weights_file_declaring_a_huge_dataset_is_refused_before_reading(tmp_path, layout, n):
    model = simple_cnn()
    kernel = tuple(model.get_layer("block1_conv").kernel.shape)
    path = tmp_path / "w.weights.h5"
    if layout == "keras3":
        model.save_weights(path)
        name = f"/layers/{keras_save_keys(model)['block1_conv']}/vars/0"
        with h5py.File(path, "a") as f:
            del f[name]
            f.create_dataset(name, shape=(n, n), dtype="f4")     # declared only: HDF5 allocates lazily
    else:   # the Keras 2 layout keras.applications downloads
        name = "/block1_conv/block1_conv/kernel:0"
        with h5py.File(path, "w") as f:
            f.attrs["layer_names"] = [b"block1_conv"]
            g = f.create_group("block1_conv")
            g.attrs["weight_names"] = [b"block1_conv/kernel:0"]
            g.create_dataset("block1_conv/kernel:0", shape=(n, n), dtype="f4")
    assert path.stat().st_size < 8 << 20     # the real arrays; the declared one is n*n*4 bytes
    before = np.array(model.get_layer("block1_conv").kernel)
    rss, t = peak_rss(), time.monotonic()
    with pytest.raises(LeafnetError) as e:
        load_backbone_weights(model, get_backbone("simple-cnn"), path)
    assert time.monotonic() - t < 5 and peak_rss() - rss < 256 << 20     # nothing of n*n*4 bytes was read
    assert str(e.value) == (f"--weights {path} does not fit simple-cnn: dataset {name} declares shape ({n}, {n}) "
                            f"but layer 'block1_conv' needs {kernel} (first mismatching layer)")
    np.testing.assert_array_equal(np.array(model.get_layer("block1_conv").kernel), before)


# --------------------------------------------------------------------- zip bombs


def bomb(src, dst, member, size):
    """``src`` (a .keras file) with ``member`` padded by ``size`` bytes of spaces (JSON
    whitespace: the config stays valid), deflated to a few MB."""
    with zipfile.ZipFile(src) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, data in entries.items():
            with z.open(name, "w", force_zip64=True) as f:
                f.write(data)
                if name == member:
                    chunk = b" " * (16 << 20)
                    for _ in range(size // len(chunk)):
                        f.write(chunk)
    return dst


@pytest.mark.parametrize("member, cap", [("config.json", "METADATA_LIMIT"), ("model.weights.h5", "WEIGHTS_LIMIT")])
def test_keras_member_declaring_more_than_its_limit_is_refused_before_extracting(
        shared_run, tmp_path, run_cli, monkeypatch, member, cap):
    from leafnet import archive

    _, run_dir = shared_run
    path = bomb(run_dir / "model.keras", tmp_path / "model.keras", member, 96 << 20)
    monkeypatch.setattr(archive, cap, 16 << 20)
    image = read_csv(run_dir / "split.csv")[0]["path"]
    code, out, err = run_cli("predict", path, image, "--out", tmp_path / "p.csv")
    assert code == 2 and not (tmp_path / "p.csv").exists()
    with zipfile.ZipFile(path) as z:
        declared = archive.size_text(z.getinfo(member).file_size)     # 96 MiB of padding and the member itself
    assert err.strip().splitlines() == [f"error: model {path}: refused, {member} declares {declared} (limit 16 MiB)"]


def test_sizes_read_as_a_person_writes_them():
    from leafnet import archive

    assert [archive.size_text(n) for n in (1536 << 20, 64 << 20, 6963, 12)] == ["1.5 GiB", "64 MiB", "6.8 KiB",
                                                                                "12 bytes"]


def test_a_config_json_over_the_real_limit_is_refused(shared_run, tmp_path, run_cli):
    """The default limits, unpatched (a 1.5 GiB member takes >10 s to deflate here: 80 MiB shows the same)."""
    _, run_dir = shared_run
    path = bomb(run_dir / "model.keras", tmp_path / "model.keras", "config.json", 80 << 20)
    image = read_csv(run_dir / "split.csv")[0]["path"]
    t = time.monotonic()
    code, out, err = run_cli("predict", path, image, "--out", tmp_path / "p.csv")
    assert time.monotonic() - t < 5 and code == 2
    assert err.strip().splitlines() == [f"error: model {path}: refused, config.json declares 80 MiB (limit 64 MiB)"]


# --------------------------------------------------------------------- a damaged model.keras


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])


def garble(path):
    """Overwrite bytes inside the weights member: the zip directory still reads."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model.weights.h5")
    data = bytearray(path.read_bytes())
    at = info.header_offset + 100 + info.compress_size // 2
    data[at:at + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate, garble])
@pytest.mark.parametrize("command", ["evaluate", "export", "explain", "predict"])
def test_a_damaged_model_keras_is_one_line_in_every_command(shared_run, tmp_path, run_cli, command, damage):
    _, run_dir = shared_run
    run = copy_run(run_dir, tmp_path / "run")
    damage(run / "model.keras")
    image = read_csv(run / "split.csv")[0]["path"]
    args = {"evaluate": [], "export": ["--format", "keras"], "explain": [image],
            "predict": [image, "--out", tmp_path / "p.csv"]}[command]
    code, out, err = run_cli(command, run, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: model {run / 'model.keras'}: damaged, ")
    assert lines[0].endswith(f"; delete {run / 'metrics.json'} and rerun the fit command with --run-dir {run} "
                             "to rebuild it (best.keras in the same folder is intact)")
    assert not (run / "export").exists() and not (run / "eval").exists()


def test_the_report_of_a_run_with_a_damaged_model_says_so(shared_run, tmp_path, run_cli):
    _, run_dir = shared_run
    run = copy_run(run_dir, tmp_path / "run")
    truncate(run / "model.keras")
    code, out, err = run_cli("report", run)
    assert code == 0 and "Traceback" not in err, err      # the rest of the run folder is still worth a page
    page = (run / "report.html").read_text(encoding="utf-8")
    assert f"explanation sample failed: model {run / 'model.keras'}: damaged, not a readable .keras archive" in page


# --------------------------------------------------------------------- a damaged val image


def test_evaluate_skips_a_val_image_damaged_after_training_and_lists_it(shared_run, tmp_path, run_cli):
    _, run_dir = shared_run
    run = copy_run(run_dir, tmp_path / "run", with_data=True)
    val = [r["path"] for r in read_csv(run / "split.csv") if r["subset"] == "val"]
    (tmp_path / "bad").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    shutil.copy(tmp_path / "bad", val[3])
    code, out, err = run_cli("evaluate", run)
    assert code == 0, err
    assert f"skipped 1 image(s) that cannot be read (listed under 'skipped' in the report):\n  {val[3]}: cannot decode" in out
    report = json.loads((run / "eval" / "val.json").read_text())
    assert report["images"] == len(val) - 1
    assert [s["path"] for s in report["skipped"]] == [val[3]] and report["skipped"][0]["error"].startswith("cannot decode")
    rows = read_csv(run / "eval" / "val_predictions.csv")
    assert sorted(r["path"] for r in rows) == sorted(val[:3] + val[4:])


# --------------------------------------------------------------------- a hand-edited config.yaml

TAMPERED_SIZE = 100_000


@pytest.mark.parametrize("command", ["evaluate", "export", "explain", "report"])
def test_a_tampered_run_config_is_one_line_naming_the_file_and_key(shared_run, tmp_path, run_cli, command):
    _, run_dir = shared_run
    run = copy_run(run_dir, tmp_path / "run")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"]["image_size"] = TAMPERED_SIZE
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    image = read_csv(run / "split.csv")[0]["path"]
    args = {"evaluate": [], "export": ["--format", "tflite"], "explain": [image], "report": []}[command]
    code, out, err = run_cli(command, run, *args)
    assert code == 2, err
    assert err.strip().splitlines() == [f"error: {run / 'config.yaml'}: data.image_size must be <= 2048; received "
                                        f"{TAMPERED_SIZE} (the run folder's config was edited or damaged)"]
    assert not (run / "export").exists() and not (run / "eval").exists() and not (run / "report.html").exists()


# --------------------------------------------------------------------- split.csv rows outside the data


@pytest.mark.parametrize("command", ["evaluate", "export", "explain", "report"])
def test_split_rows_outside_the_data_folder_are_refused_unread(shared_run, tmp_path, run_cli, command, monkeypatch):
    _, run_dir = shared_run
    run = copy_run(run_dir, tmp_path / "run")
    rows = read_csv(run / "split.csv")
    n = next(i for i, r in enumerate(rows) if r["subset"] == "val")
    rows[n]["path"] = "/etc/passwd"
    write_csv(run / "split.csv", list(rows[0]), [list(r.values()) for r in rows])
    data = yaml.safe_load((run / "config.yaml").read_text())["data"]["data"]
    line = (f"{run / 'split.csv'}, row {n + 1}: /etc/passwd lies outside the run's data folder ({data}); "
            "refusing to read it; start a new run with another --run-dir")
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(os.fspath(p)) or real_open(p, *a, **k))
    args = {"evaluate": [], "export": ["--format", "tflite"], "explain": ["--per-class", "1"], "report": []}[command]
    code, out, err = run_cli(command, run, *args)
    assert "passwd" not in " ".join(opened)
    if command == "report":                       # the rest of the run folder is still worth a page
        assert code == 0 and "Traceback" not in err, err
        page = html.unescape((run / "report.html").read_text(encoding="utf-8"))
        assert line in page
    else:
        assert code == 2 and err.strip().splitlines() == [f"error: {line}"], err
