"""Hostile entries in a data or predict folder: FIFOs, devices, huge files, class folders that
are symbolic links into the data folder, folders that cannot be read. Each is skipped with
its reason; none hangs, exhausts memory or labels an image twice."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from leafnet.data.files import MAX_FILE_BYTES
from leafnet.data.scan import scan_folder
from leafnet.errors import DataError

NOT_REGULAR = "not a regular file"
TOO_LARGE = (f"image too large: {MAX_FILE_BYTES + 1:,} bytes, over the limit of {MAX_FILE_BYTES:,} bytes "
             "(256 MiB)")
LINK_INSIDE = "symbolic link to a folder inside the data folder (not followed: its images would be labelled twice)"
LINK_AROUND = "symbolic link to a folder that holds the data folder (not followed: its images would be labelled twice)"
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"),
                                reason="needs FIFOs and /dev/zero")


def png(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((16, 16, 3)) * 255).astype("uint8")
    Image.fromarray(arr).save(path)
    return path


def two_classes(root, n=2):
    for c, name in enumerate(("elm", "oak")):
        for i in range(n):
            png(root / name / f"img_{i}.png", seed=10 * c + i)
    return root


def reasons(skipped, root):
    return {os.path.relpath(s["path"], root): s["reason"] for s in skipped}


def huge(path):
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)             # sparse: nothing written, the size is what counts


def test_a_file_over_the_size_limit_is_skipped_unread(tmp_path):
    root = two_classes(tmp_path / "data")
    huge(root / "oak" / "huge.png")
    scan = scan_folder(root)
    assert reasons(scan.skipped, root) == {"oak/huge.png": TOO_LARGE} and scan.counts() == {"elm": 2, "oak": 2}


# A FIFO blocks its reader and /dev/zero never ends (in a worker thread, where no alarm reaches):
# the commands run in a subprocess with a timeout and a memory limit, so a regression fails.
HOSTILE_SCRIPT = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
import keras
from leafnet.cli import main
from leafnet.predict import predict
root, report, photos = sys.argv[1:]
code = main(["data", "check", root, "--json", report])
inputs = keras.Input((16, 16, 3))
model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs)))
rows = predict(model, [photos, "/dev/zero"])
print(json.dumps({"code": code, "rows": [[r["path"], r["class"], r["error"]] for r in rows]}))
"""


@needs_fifo
def test_fifo_and_dev_zero_hang_neither_data_check_nor_predict(tmp_path):
    root = two_classes(tmp_path / "data")
    os.mkfifo(root / "elm" / "fifo.jpg")
    os.symlink("/dev/zero", root / "oak" / "zero.jpg")
    photos = tmp_path / "photos"
    png(photos / "a.png", seed=1)
    os.mkfifo(photos / "b_fifo.jpg")
    os.symlink("/dev/zero", photos / "c_zero.jpg")
    huge(photos / "d_huge.png")
    out = subprocess.run([sys.executable, "-c", HOSTILE_SCRIPT, str(root), str(tmp_path / "r.json"), str(photos)],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert f"    {root / 'elm/fifo.jpg'}: {NOT_REGULAR}" in lines
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["used"] == 4
    assert reasons(report["skipped"], root) == {"elm/fifo.jpg": NOT_REGULAR, "oak/zero.jpg": NOT_REGULAR}
    result = json.loads(lines[-1])
    assert result["code"] == 0
    rows = [(os.path.relpath(p, photos) if p != "/dev/zero" else p, err) for p, _, err in result["rows"]]
    assert rows == [("a.png", ""), ("b_fifo.jpg", NOT_REGULAR), ("c_zero.jpg", NOT_REGULAR),
                    ("d_huge.png", TOO_LARGE), ("/dev/zero", NOT_REGULAR)]
    assert result["rows"][0][1] in ("0", "1")


@pytest.mark.parametrize("target", [".", "elm", "elm/inner"])
def test_a_class_folder_linked_into_the_data_folder_is_skipped(tmp_path, target):
    root = two_classes(tmp_path / "data")
    png(root / "elm" / "inner" / "deep.png", seed=99)
    os.symlink(target, root / "self")
    scan = scan_folder(root)
    assert scan.classes == ["elm", "oak"]
    assert reasons(scan.skipped, root) == {"self": LINK_INSIDE}
    assert len(scan.files) == len(set(os.path.realpath(p) for p in scan.files)) == 5   # no image twice


def test_a_class_folder_linked_to_a_folder_holding_the_data_folder_is_skipped(tmp_path):
    root = two_classes(tmp_path / "data")
    os.symlink("..", root / "up")
    scan = scan_folder(root)
    assert scan.classes == ["elm", "oak"] and reasons(scan.skipped, root) == {"up": LINK_AROUND}


def test_a_class_folder_linked_outside_the_data_folder_is_still_a_class(tmp_path):
    root = two_classes(tmp_path / "data")
    png(tmp_path / "elsewhere" / "x.png", seed=5)
    os.symlink(tmp_path / "elsewhere", root / "pine")
    scan = scan_folder(root)
    assert scan.counts() == {"elm": 2, "oak": 2, "pine": 1} and scan.skipped == []


def test_data_check_reports_a_self_link(tmp_path, run_cli):
    root = two_classes(tmp_path / "data")
    os.symlink(".", root / "self")
    code, out, err = run_cli("data", "check", root, "--json", tmp_path / "r.json")
    assert code == 0, err
    assert f"    {root / 'self'}: {LINK_INSIDE}" in out.splitlines()
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["classes"] == {"elm": 2, "oak": 2} and report["duplicates"] == []


def deny(monkeypatch, folder):
    """``os.scandir(folder)`` fails as it does for a folder with mode 000 (tests run as root here)."""
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


READ_DENIED = "cannot read folder: Permission denied"


def test_an_unreadable_class_folder_is_reported(tmp_path, monkeypatch, run_cli):
    root = two_classes(tmp_path / "data")
    deny(monkeypatch, root / "oak")
    scan = scan_folder(root, strict=False)
    assert reasons(scan.skipped, root) == {"oak": READ_DENIED} and scan.counts() == {"elm": 2, "oak": 0}
    code, out, _ = run_cli("data", "check", root, "--json", tmp_path / "r.json")
    assert code == 1
    lines = out.splitlines()
    assert f"  oak         0  <- no usable image ({READ_DENIED})" in lines
    assert f"    {root / 'oak'}: {READ_DENIED}" in lines
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["skipped"] == [{"path": str(root / "oak"), "reason": READ_DENIED}]
    with pytest.raises(DataError) as e:
        scan_folder(root)
    assert str(e.value) == (f"class folder(s) with no usable image in {root}: 'oak' ({READ_DENIED}) "
                            f"(see skipped files with: leafnet data check {root})")


def test_an_unreadable_nested_folder_is_reported(tmp_path, monkeypatch):
    root = two_classes(tmp_path / "data")
    png(root / "oak" / "more" / "x.png", seed=7)
    deny(monkeypatch, root / "oak" / "more")
    scan = scan_folder(root)
    assert reasons(scan.skipped, root) == {"oak/more": READ_DENIED} and scan.counts() == {"elm": 2, "oak": 2}


def test_an_unreadable_data_folder_is_one_error(tmp_path, monkeypatch):
    root = two_classes(tmp_path / "data")
    deny(monkeypatch, root)
    with pytest.raises(DataError, match=f"^cannot read data folder {root}: Permission denied$"):
        scan_folder(root)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads a folder with mode 000")
def test_a_class_folder_with_mode_000_is_reported(tmp_path):
    root = two_classes(tmp_path / "data")
    os.chmod(root / "oak", 0)
    try:
        scan = scan_folder(root, strict=False)
    finally:
        os.chmod(root / "oak", 0o755)
    assert reasons(scan.skipped, root) == {"oak": READ_DENIED}
