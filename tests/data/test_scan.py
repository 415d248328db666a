import json
import os

import numpy as np
import pytest
from PIL import Image

from leafnet.data.scan import scan_folder
from leafnet.errors import DataError


def img(path, mode="RGB", size=(20, 16), fmt=None, **save):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    arr = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
    im = Image.fromarray(arr)
    if mode == "I;16":
        im = Image.fromarray((arr[..., 0].astype(np.uint16) * 257))
    elif mode != "RGB":
        im = im.convert(mode)
    im.save(path, format=fmt, **save)
    return path


@pytest.fixture
def messy(tmp_path):
    """A folder with every kind of file a real upload has."""
    root = tmp_path / "data"
    a, b = root / "alpha", root / "beta gamma"
    used = [img(a / "rgb.jpg"), img(a / "gray.png", "L"), img(a / "rgba.png", "RGBA"), img(a / "pal.png", "P"),
            img(a / "g16.png", "I;16"), img(a / "cmyk.jpg", "CMYK"), img(a / "x.bmp"), img(a / "x.webp"),
            img(a / "nested" / "deeper" / "n.jpg"), img(b / "b1.png"), img(b / "b2.JPG", fmt="JPEG"),
            img(b / "anim.gif")]
    (a / "zero.jpg").write_bytes(b"")
    good = (a / "rgb.jpg").read_bytes()
    (a / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (a / "html.jpg").write_text("<html>not an image</html>")
    img(a / "tiff_named.jpg", fmt="TIFF")
    (a / "notes.txt").write_text("hello")
    (a / ".hidden.jpg").write_bytes(good)
    (a / "._rgb.jpg").write_bytes(b"\x00\x05\x16\x07")
    img(root / "__MACOSX" / "alpha" / "rgb.jpg")
    img(root / ".git" / "obj.png")
    img(a / ".thumbs" / "t.png")
    (root / "README.md").write_text("top-level file")
    os.symlink(a / "missing.jpg", a / "broken.jpg")
    return root, used


def test_every_file_is_used_or_skipped_with_a_reason(messy):
    root, used = messy
    scan = scan_folder(root)
    all_files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    assert len(scan.files) + len(scan.skipped) == len(all_files)
    assert sorted(scan.files) == sorted(str(p) for p in used)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in scan.skipped}
    assert reasons["zero.jpg"] == "cannot decode: Input is empty."
    cut = (root / "alpha" / "truncated.jpg").stat().st_size   # within the headers or within the pixels:
    assert reasons["truncated.jpg"] in (f"cannot decode: Invalid JPEG data, size {cut}",
                                        "cannot decode: jpeg::Uncompress failed. Invalid JPEG data or crop window.")
    unknown = "cannot decode: Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP required."
    assert reasons["html.jpg"] == reasons["tiff_named.jpg"] == unknown
    assert reasons["notes.txt"] == "not an image extension (.txt); allowed: .jpg, .jpeg, .png, .bmp, .gif, .webp"
    assert reasons[".hidden.jpg"] == "hidden file"
    assert reasons["._rgb.jpg"] == "macOS resource fork (._ file)"
    assert reasons["broken.jpg"] == "broken symbolic link"
    assert reasons["README.md"] == "not inside a class folder"
    assert reasons["t.png"] == "inside a hidden folder"
    macosx = [s for s in scan.skipped if "__MACOSX" in s["path"]]
    assert macosx and macosx[0]["reason"] == "inside a __MACOSX folder"


def test_classes_in_sorted_order_nested_files_belong_to_top_folder(messy):
    root, _ = messy
    scan = scan_folder(root)
    assert scan.classes == ["alpha", "beta gamma"]
    nested = scan.files.index(str(root / "alpha" / "nested" / "deeper" / "n.jpg"))
    assert scan.labels[nested] == 0
    assert scan.counts() == {"alpha": 9, "beta gamma": 3}
    report = scan.report()
    json.dumps(report)
    assert report["found"] == report["used"] + len(report["skipped"])


def test_expected_classes_missing_or_extra_are_named(messy):
    root, _ = messy
    with pytest.raises(DataError, match="missing class folder\\(s\\): 'delta'"):
        scan_folder(root, classes=["alpha", "beta gamma", "delta"])
    with pytest.raises(DataError, match="unexpected class folder\\(s\\): 'beta gamma'"):
        scan_folder(root, classes=["alpha"])
    # The stored order wins over sorting.
    assert scan_folder(root, classes=["beta gamma", "alpha"]).classes == ["beta gamma", "alpha"]


def test_unusable_folders_are_refused(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        scan_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        scan_folder(tmp_path / "empty")
    one = tmp_path / "one"
    img(one / "only" / "a.png")
    with pytest.raises(DataError, match="single class folder"):
        scan_folder(one)
    bad = tmp_path / "bad"
    img(bad / "ok" / "a.png")
    (bad / "broken").mkdir()
    (bad / "broken" / "z.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no usable image in .*'broken'"):
        scan_folder(bad)
    assert scan_folder(bad, strict=False).counts() == {"broken": 0, "ok": 1}


def test_duplicates_found_by_content(tmp_path):
    a = img(tmp_path / "d" / "x" / "a.png")
    (tmp_path / "d" / "y").mkdir()
    (tmp_path / "d" / "y" / "copy.png").write_bytes(a.read_bytes())
    img(tmp_path / "d" / "y" / "other.png")
    scan = scan_folder(tmp_path / "d")
    groups = scan.duplicates()
    assert len(groups) == 1
    assert sorted(os.path.basename(scan.files[i]) for i in groups[0]) == ["a.png", "copy.png"]
