"""A corpus of the files a real upload holds, written by code (no binaries in the repository).

``write_corpus(root)`` writes a labelled folder (one sub-folder per class) with one file per
case and returns what leafnet must do with each: ``{relative path: Outcome}``, where
``Outcome.used`` says the scan keeps the file and ``Outcome.reason`` is the exact reason it
is skipped with (what ``data check``, ``data_report.json`` and ``predict``'s error column
say). The tests in ``test_bad_input.py`` pin every case; the README's "Reliability" section
counts them.

Cases: truncated JPEG, a truncated JPEG that also makes libjpeg print to stderr, truncated
PNG, zero-byte file, text / HTML / TIFF named ``.jpg``, a JPEG with bytes
overwritten mid-file (libjpeg only warns: used, see README), broken symlink, symlink to a
folder, CMYK, 16-bit PNG, palette, RGBA, grayscale, animated GIF, BMP, WebP, EXIF-rotated
JPEG, 1x1, 20000x20000 PNG and a JPEG whose header says 20000x20000 (both refused by the
pixel limit before decoding), ``__MACOSX``, ``._*``, hidden files and folders, nested
folders, class names with spaces, unicode, a newline or a leading dot, a file over the
size limit, a class folder linked to the data folder itself (``self -> .``). FIFOs and
devices, which block or never end on today's readers, are in ``test_hostile_files.py``,
read in a subprocess with a timeout.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HUGE = 20000  # the side of the decompression-bomb images

# What TensorFlow 2.21's decoder says, as leafnet reports it
JPEG_FAILED = "cannot decode: jpeg::Uncompress failed. Invalid JPEG data or crop window."
CHATTY_FAILED = "cannot decode: Invalid JPEG data, size 300"    # chatty_truncated_jpeg()
UNKNOWN_FORMAT = "cannot decode: Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP required."
TOO_LARGE = ("cannot decode: image too large: 20000x20000 pixels, over the limit of 67,108,864 pixels "
             "(64 megapixels)")
ALLOWED = ".jpg, .jpeg, .png, .bmp, .gif, .webp"
MAX_FILE_BYTES = 256 * 2 ** 20      # leafnet.data.files.MAX_FILE_BYTES
FILE_TOO_LARGE = (f"image too large: {MAX_FILE_BYTES + 1:,} bytes, over the limit of {MAX_FILE_BYTES:,} bytes "
                  "(256 MiB)")
LINK_INSIDE = "symbolic link to a folder inside the data folder (not followed: its images would be labelled twice)"


@dataclass(frozen=True)
class Outcome:
    used: bool
    reason: str = ""     # the skip reason, exactly (skipped files only)


USED = Outcome(True)


def skipped(reason: str) -> Outcome:
    return Outcome(False, reason)


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric RGB picture (JPEG keeps it well; every flip or turn changes it)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 1.5, 2)
    img = np.stack([255 * x / max(width - 1, 1), 255 * y / max(height - 1, 1),
                    127 + 120 * np.sin(a * x / 5 + b * y / 9)], axis=-1)
    img[: height // 3, : width // 4] = (250, 30, 30)   # a red corner block: top-left
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg_bytes(arr: np.ndarray, exif: Image.Exif | None = None, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if mode != "RGB":
        im = im.convert(mode)
    kwargs = {"exif": exif.tobytes()} if exif is not None else {}
    im.save(buf, format="JPEG", quality=100, subsampling=0, **kwargs)
    return buf.getvalue()


def exif_rotated_jpeg(upright: np.ndarray, orientation: int = 6) -> bytes:
    """A JPEG that stores ``upright`` turned so that a viewer applying the EXIF
    ``orientation`` tag shows ``upright`` again (what a phone writes for a portrait photo)."""
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
    im = Image.fromarray(upright)
    stored = im if inverse[orientation] is None else im.transpose(inverse[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg_bytes(np.asarray(stored), exif=exif)


def huge_png(side: int = HUGE) -> bytes:
    """A valid ``side`` x ``side`` 1-bit grayscale PNG of one colour: a few dozen KB on disk,
    ``side**2 * 3`` bytes (1.2 GB at 20000) once decoded to RGB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((side + 7) // 8)   # filter byte + one bit per pixel
    z = zlib.compressobj(9)
    rows = row * 1000
    data = b"".join(z.compress(rows) for _ in range(side // 1000)) + z.compress(row * (side % 1000)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def huge_header_jpeg(side: int = HUGE) -> bytes:
    """A 16x16 JPEG whose frame header claims ``side`` x ``side`` pixels."""
    data = bytearray(jpeg_bytes(pattern(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def overwritten_jpeg() -> bytes:
    """A JPEG with 16 bytes in the middle of its compressed data replaced (a bad sector)."""
    data = bytearray(jpeg_bytes(pattern(64, 48, seed=3)))
    mid = len(data) // 2
    data[mid:mid + 16] = b"XXXXXXXXXXXXXXXX"
    return bytes(data)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def chatty_truncated_jpeg() -> bytes:
    """A JPEG cut after its headers whose JFIF version reads 0.00: libjpeg prints
    ``Warning: unknown JFIF revision number 0.00`` and an error line to stderr."""
    data = bytearray(jpeg_bytes(pattern(40, 24)))
    v = data.index(b"JFIF\x00") + 5
    data[v:v + 2] = b"\x00\x00"
    return bytes(data[:300])


def _image(path: Path, arr: np.ndarray, mode: str = "RGB", fmt: str | None = None, **save) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr)
    if mode == "I;16":
        im = Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
    elif mode != "RGB":
        im = im.convert(mode)
    im.save(path, format=fmt, **save)


def write_corpus(root: str | os.PathLike) -> dict[str, Outcome]:
    """Write every case under ``root``; return ``{path relative to root: Outcome}`` for
    every entry the scan reports (files, and the symlink to a folder)."""
    root = Path(root)
    alpha = root / "alpha"
    cases: dict[str, Outcome] = {}
    pic = pattern(40, 24)

    def put(rel: str, outcome: Outcome, data: bytes | None = None, **image) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        else:
            _image(path, image.pop("arr", pic), **image)
        cases[rel] = outcome

    good_jpeg = jpeg_bytes(pic)
    put("alpha/good.jpg", USED, good_jpeg)
    put("alpha/upper_case.JPG", USED, good_jpeg[:-2] + b"\xff\xd9")   # a second copy, not byte-identical
    put("alpha/truncated.jpg", skipped(JPEG_FAILED), good_jpeg[: len(good_jpeg) // 2])
    put("alpha/truncated_chatty.jpg", skipped(CHATTY_FAILED), chatty_truncated_jpeg())
    png = png_bytes(pic)
    put("alpha/truncated.png", skipped(f"cannot decode: Invalid PNG data, size {len(png) // 2}"), png[: len(png) // 2])
    put("alpha/zero_bytes.jpg", skipped("cannot decode: Input is empty."), b"")
    put("alpha/text.jpg", skipped(UNKNOWN_FORMAT), b"just some notes, saved with the wrong name\n")
    put("alpha/html.jpg", skipped(UNKNOWN_FORMAT), b"<!DOCTYPE html><html><body>404 Not Found</body></html>")
    put("alpha/tiff.jpg", skipped(UNKNOWN_FORMAT), fmt="TIFF")
    put("alpha/overwritten_mid_file.jpg", USED, overwritten_jpeg())
    put("alpha/cmyk.jpg", USED, mode="CMYK", fmt="JPEG")
    put("alpha/gray.png", USED, mode="L")
    put("alpha/png16.png", USED, mode="I;16")
    put("alpha/palette.png", USED, mode="P")
    put("alpha/rgba.png", USED, mode="RGBA")
    put("alpha/bitmap.bmp", USED)
    put("alpha/photo.webp", USED, lossless=True)
    frames = [Image.fromarray(pattern(20, 20, seed=s)) for s in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    put("alpha/animated.gif", USED, buf.getvalue())
    put("alpha/exif_rotated.jpg", USED, exif_rotated_jpeg(pic, 6))
    put("alpha/one_pixel.png", USED, arr=pic[:1, :1])
    put("alpha/huge_20000x20000.png", skipped(TOO_LARGE), huge_png())
    put("alpha/huge_header.jpg", skipped(TOO_LARGE), huge_header_jpeg())
    put("alpha/notes.txt", skipped(f"not an image extension (.txt); allowed: {ALLOWED}"), b"notes")
    put("alpha/no_extension", skipped(f"not an image extension (none); allowed: {ALLOWED}"), good_jpeg)
    put("alpha/.hidden.jpg", skipped("hidden file"), good_jpeg)
    put("alpha/._good.jpg", skipped("macOS resource fork (._ file)"), b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    put("alpha/nested/deeper/nested.png", USED, arr=pattern(24, 24, seed=5))
    put("alpha/.thumbnails/thumb.png", skipped("inside a hidden folder"))
    put("__MACOSX/alpha/._good.jpg", skipped("inside a __MACOSX folder"), b"\x00\x05\x16\x07")
    put("__MACOSX/alpha/good.jpg", skipped("inside a __MACOSX folder"), good_jpeg)
    put(".git/objects/blob.png", skipped("inside a hidden folder"))
    put(".dotclass/leading_dot_class.png", skipped("inside a hidden folder"))
    put("README.md", skipped("not inside a class folder"), b"# my images\n")
    os.symlink(alpha / "does_not_exist.jpg", alpha / "broken_link.jpg")
    cases["alpha/broken_link.jpg"] = skipped("broken symbolic link")
    os.symlink(alpha / "nested", alpha / "linked_folder")
    cases["alpha/linked_folder"] = skipped("symbolic link to a folder (not followed)")
    os.symlink(".", root / "self")
    cases["self"] = skipped(LINK_INSIDE)
    with open(alpha / "huge_file.png", "wb") as f:     # sparse: its size is all there is to it
        f.truncate(MAX_FILE_BYTES + 1)
    cases["alpha/huge_file.png"] = skipped(FILE_TOO_LARGE)
    put("beta gamma/space in name.png", USED, arr=pattern(30, 30, seed=1))
    put("ünïcødé 葉/葉っぱ.png", USED, arr=pattern(30, 30, seed=2))
    put("new\nline/file\nwith newline.png", USED, arr=pattern(30, 30, seed=4))
    return cases


CLASSES = ["alpha", "beta gamma", "new\nline", "ünïcødé 葉"]
"""The class folders of the corpus in label order (Python's sorted order of the names)."""
