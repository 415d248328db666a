"""Bad input: every case of the generated corpus (tests/data/bad_corpus.py) is pinned, used or
skipped with its reason, and the counts add up; EXIF orientation; the pixel limit's memory."""

import collections
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from leafnet.data.files import MAX_FILE_BYTES
from leafnet.data.decode import MAX_PIXELS, decode_image, exif_orientation, image_size
from leafnet.data.pipeline import load_image
from leafnet.data.scan import scan_folder
from leafnet.runs import read_csv

_spec = importlib.util.spec_from_file_location("bad_corpus", Path(__file__).with_name("bad_corpus.py"))
bad_corpus = sys.modules.setdefault("bad_corpus", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(bad_corpus)   # (tests are not a package: --import-mode=importlib)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "uploads"
    return root, bad_corpus.write_corpus(root)


def entries_on_disk(root: Path) -> list[str]:
    """Every file under root, and every symlink to a folder (the scan reports those too)."""
    out = []
    for d, dirs, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in files]
        out += [os.path.relpath(os.path.join(d, x), root) for x in dirs if os.path.islink(os.path.join(d, x))]
    return sorted(out)


def test_every_case_is_used_or_skipped_with_its_reason_and_the_counts_add_up(corpus):
    root, cases = corpus
    scan = scan_folder(root)
    assert sorted(cases) == entries_on_disk(root)            # the corpus lists every entry it wrote
    used = sorted(os.path.relpath(p, root) for p in scan.files)
    reasons = {os.path.relpath(s["path"], root): s["reason"] for s in scan.skipped}
    assert len(used) + len(reasons) == len(scan.files) + len(scan.skipped) == len(cases)
    assert used == sorted(rel for rel, o in cases.items() if o.used)
    assert reasons == {rel: o.reason for rel, o in cases.items() if not o.used}
    assert scan.classes == bad_corpus.CLASSES
    report = scan.report()
    assert report["found"] == report["used"] + len(report["skipped"]) == len(cases)
    json.dumps(report, ensure_ascii=False)
    counts = scan.counts()
    assert counts["new\nline"] == counts["ünïcødé 葉"] == counts["beta gamma"] == 1
    assert sum(o.used for o in cases.values()) == 17 and len(cases) == 40   # the README's figures
    assert bad_corpus.MAX_FILE_BYTES == MAX_FILE_BYTES


def skip_reasons(root: Path, skipped: list[dict]) -> dict[str, str]:
    return {os.path.relpath(s["path"], root): s["reason"] for s in skipped}


def expected_reasons(cases: dict) -> dict[str, str]:
    return {rel: o.reason for rel, o in cases.items() if not o.used}


def test_data_check_prints_and_reports_every_reason(corpus, run_cli, tmp_path):
    root, cases = corpus
    code, out, err = run_cli("data", "check", root, "--json", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["found"] == len(cases) and report["used"] + len(report["skipped"]) == len(cases)
    assert skip_reasons(root, report["skipped"]) == expected_reasons(cases)
    lines = out.splitlines()
    for reason, n in collections.Counter(expected_reasons(cases).values()).items():
        assert f"  {n:6d}  {reason}" in lines, reason             # the summary: every reason, counted
    assert f"    {root / 'alpha/text.jpg'}: {bad_corpus.UNKNOWN_FORMAT}" in lines
    assert f"    {root / 'self'}: {bad_corpus.LINK_INSIDE}" in lines     # (the first 20 are listed)


@pytest.mark.slow
def test_fit_writes_every_reason_to_data_report(corpus, tiny_config, tmp_path):
    import leafnet

    root, cases = corpus
    run_dir = tmp_path / "run"
    leafnet.fit(tiny_config(root, run_dir, transfer__epochs=1, finetune__epochs=0, data__val_split=0.3))
    report = json.loads((run_dir / "data_report.json").read_text(encoding="utf-8"))
    assert skip_reasons(root, report["skipped"]) == expected_reasons(cases)


@pytest.mark.slow
def test_predict_error_column_carries_the_reason_and_libjpeg_stays_quiet(corpus, shared_run, capfd, tmp_path):
    from leafnet.cli import main

    root, cases = corpus
    undecodable = sorted(rel for rel, o in cases.items() if o.reason.startswith("cannot decode: "))
    assert len(undecodable) == 9
    code = main(["predict", str(shared_run[1]), *(str(root / rel) for rel in undecodable),
                 "--out", str(tmp_path / "p.csv")])
    err = capfd.readouterr().err
    assert code == 0, err
    assert "JFIF" not in err and "JPEG library" not in err      # truncated_chatty.jpg's libjpeg lines
    rows = read_csv(tmp_path / "p.csv")
    assert {os.path.relpath(r["path"], root): r["error"] for r in rows} == {rel: cases[rel].reason
                                                                           for rel in undecodable}


def test_libjpeg_lines_stay_off_the_console_of_data_check(tmp_path):
    """libjpeg prints from C to stderr about a damaged JPEG; the scan names the file instead."""
    root = tmp_path / "data"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        (root / cls / "good.png").write_bytes(bad_corpus.png_bytes(bad_corpus.pattern(20, 20, seed=len(cls))))
    (root / "a" / "chatty.jpg").write_bytes(bad_corpus.chatty_truncated_jpeg())
    (root / "a" / "overwritten.jpg").write_bytes(bad_corpus.overwritten_jpeg())
    script = "import sys; from leafnet.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", script, "data", "check", str(root), "--json", str(tmp_path / "r.json")],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert out.returncode == 0, out.stderr
    for line in ("Warning: unknown JFIF revision number 0.00", "Improper call to JPEG library",
                 "Corrupt JPEG data: 56 extraneous bytes before marker 0xd9"):
        assert line not in out.stderr
    assert f"    {root / 'a/chatty.jpg'}: {bad_corpus.CHATTY_FAILED}" in out.stdout.splitlines()
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["skipped"] == [{"path": str(root / "a/chatty.jpg"), "reason": bad_corpus.CHATTY_FAILED}]
    assert report["used"] == 3


def test_predict_decoder_agrees_with_the_scan(corpus):
    """``leafnet predict`` decodes file by file; it must refuse exactly the files the scan refuses."""
    from leafnet.predict import decode_file

    root, cases = corpus
    for rel, outcome in cases.items():
        path = root / rel
        if outcome.used or outcome.reason.startswith("cannot decode: ") or outcome.reason == bad_corpus.FILE_TOO_LARGE:
            img, err = decode_file(str(path), 16)
            assert (img is not None) == outcome.used, (rel, err)
            if not outcome.used:
                assert err == outcome.reason
            else:
                assert img.shape == (16, 16, 3) and img.dtype == np.uint8


def test_header_sizes_of_every_format(corpus):
    root, _ = corpus
    for rel in ("alpha/good.jpg", "alpha/gray.png", "alpha/png16.png", "alpha/palette.png", "alpha/bitmap.bmp",
                "alpha/photo.webp", "alpha/cmyk.jpg"):
        data = (root / rel).read_bytes()
        assert image_size(tf.constant(data)).numpy().tolist() == [24, 40], rel
    assert image_size(tf.constant((root / "alpha/animated.gif").read_bytes())).numpy().tolist() == [20, 20]
    for rel in ("alpha/huge_20000x20000.png", "alpha/huge_header.jpg"):
        assert image_size(tf.constant((root / rel).read_bytes())).numpy().tolist() == [20000, 20000]
    assert image_size(tf.constant(b"")).numpy().tolist() == [0, 0]


def test_a_pixel_bomb_is_refused_without_decoding(corpus):
    """1.2 GB of pixels once decoded (20000x20000x3), a few KB on disk: refused from the header,
    in a separate process whose peak memory is measured before and after."""
    root, _ = corpus
    script = (
        "import resource, sys, tensorflow as tf\n"
        "from leafnet.data.decode import decode_image\n"
        "decode_image(tf.constant(open(sys.argv[3], 'rb').read()))  # warm up TF's kernels on a small file\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for path in sys.argv[1:3]:\n"
        "    try:\n"
        "        decode_image(tf.constant(open(path, 'rb').read()))\n"
        "        print('decoded', path)\n"
        "    except tf.errors.InvalidArgumentError as e:\n"
        "        print('refused', 'image too large' in str(e))\n"
        "print('grew_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    files = [root / "alpha/huge_20000x20000.png", root / "alpha/huge_header.jpg", root / "alpha/good.jpg"]
    assert files[0].stat().st_size < 200_000
    out = subprocess.run([sys.executable, "-c", script, *map(str, files)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[:2] == ["refused True", "refused True"], out.stdout
    grew_mb = int(lines[2].split()[1]) / 1024
    assert grew_mb < 100, f"peak memory grew by {grew_mb:.0f} MB"   # decoding would take 1,200 MB
    assert 20000 * 20000 > MAX_PIXELS >= 8000 * 6000                # a 48-megapixel photo is fine


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_for_all_eight_tags(orientation):
    """Independent reference: TF's raw decode (EXIF ignored) turned with Pillow's transpose."""
    from PIL import ImageOps

    data = bad_corpus.exif_rotated_jpeg(bad_corpus.pattern(40, 24), orientation)
    assert int(exif_orientation(tf.constant(data))) == orientation
    raw = tf.io.decode_jpeg(data, channels=3).numpy()
    fake = Image.fromarray(raw)
    fake.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(fake))
    np.testing.assert_array_equal(decode_image(tf.constant(data)).numpy(), expected)


def test_exif_rotated_copy_gives_the_upright_pixels():
    pic = bad_corpus.pattern(40, 24)
    upright = decode_image(tf.constant(bad_corpus.jpeg_bytes(pic))).numpy()
    rotated = bad_corpus.exif_rotated_jpeg(pic, 6)
    assert tf.io.decode_jpeg(rotated).shape == (40, 24, 3)          # stored sideways
    got = decode_image(tf.constant(rotated)).numpy()
    assert got.shape == upright.shape == (24, 40, 3)
    assert np.abs(got.astype(int) - upright).mean() < 1.0          # JPEG noise only
    assert (got[:8, :10] == upright[:8, :10]).mean() > 0.5 and got[:8, :10, 0].mean() > 200  # red corner top-left


def test_exif_is_applied_in_the_file_pipeline(tmp_path):
    pic = bad_corpus.pattern(40, 24)
    (tmp_path / "up.jpg").write_bytes(bad_corpus.jpeg_bytes(pic))
    (tmp_path / "rot.jpg").write_bytes(bad_corpus.exif_rotated_jpeg(pic, 8))
    ds = tf.data.Dataset.from_tensor_slices([str(tmp_path / "up.jpg"), str(tmp_path / "rot.jpg")])
    up, rot = [x.numpy().astype(int) for x in ds.map(lambda p: load_image(p, 16))]
    assert np.abs(up - rot).mean() < 1.5
    assert np.abs(up - np.rot90(rot)).mean() > 20                    # what ignoring the tag would give


def test_orientation_of_files_without_exif_or_with_a_broken_one_is_upright():
    pic = bad_corpus.pattern(40, 24)
    for data in (bad_corpus.jpeg_bytes(pic), b"", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00\x2a", b"\x89PNG"):
        assert int(exif_orientation(tf.constant(data))) == 1
    bad_tag = bytearray(bad_corpus.exif_rotated_jpeg(pic, 6))
    i = bad_tag.index(b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06")   # Pillow writes "MM": big-endian
    bad_tag[i + 9] = 9
    assert int(exif_orientation(tf.constant(bytes(bad_tag)))) == 1  # 9 is not an orientation


def test_overwritten_jpeg_decodes_as_libjpeg_does():
    """libjpeg only warns about damaged compressed data; leafnet keeps such a file (see README)."""
    data = bad_corpus.overwritten_jpeg()
    img = decode_image(tf.constant(data)).numpy()
    assert img.shape == (48, 64, 3)
    clean = decode_image(tf.constant(bad_corpus.jpeg_bytes(bad_corpus.pattern(64, 48, seed=3)))).numpy()
    top = slice(0, 8)                                                  # rows before the damage are intact
    assert np.abs(img[top].astype(int) - clean[top]).max() <= 2
