"""Encoded image bytes -> upright uint8 RGB pixels, in TensorFlow ops only.

The one decoder of leafnet: the folder scan, the training pipeline, ``leafnet predict``
and the exported SavedModel's ``serving_bytes`` signature all call :func:`decode_image`,
so they agree on every pixel. It adds two things to ``tf.io.decode_image``:

- **EXIF orientation** (JPEG): cameras store a portrait photo sideways with an
  orientation tag; TensorFlow ignores the tag, Pillow's ``ImageOps.exif_transpose`` and
  every photo viewer apply it. The tag is read from the file's APP1 segment and the
  pixels are flipped / transposed to the upright view, as ``exif_transpose`` does.
- **A pixel limit** (:data:`MAX_PIXELS`, like Pillow's decompression-bomb check): the
  width and height are read from the header before decoding (JPEG, PNG, GIF, BMP, WebP),
  and a larger image is refused with its size instead of allocating gigabytes.

Being TensorFlow ops, both run inside tf.data and inside a SavedModel without leafnet.
"""

from __future__ import annotations

import tensorflow as tf

MAX_PIXELS = 2 ** 26
"""64 megapixels (e.g. 8192 x 8192; a 48-megapixel phone photo is 8000 x 6000): larger
images are refused before they are decoded."""

_HEAD = 65536 + 64        # bytes searched for the EXIF block and the header fields
_MAX_SEGMENTS = 64        # JPEG segments walked before giving up on finding EXIF
_MAX_IFD_ENTRIES = 64     # IFD0 entries searched for the orientation tag
_ORIENTATION_TAG = 0x0112


def _head(contents: tf.Tensor, n: int) -> tf.Tensor:
    """The first ``n`` bytes as int64 ``[n]``, zero-padded when the file is shorter."""
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, 0, n), tf.uint8), tf.int64)
    return tf.pad(b, [[0, n - tf.shape(b)[0]]])


def _at(b: tf.Tensor, i) -> tf.Tensor:
    """``b[i]`` with any index outside the buffer reading as 0 (never an error)."""
    n = tf.shape(b, out_type=tf.int64)[0]
    i = tf.cast(i, tf.int64)
    return tf.where((i >= 0) & (i < n), tf.gather(b, tf.clip_by_value(i, 0, n - 1)), tf.zeros_like(i))


def _uint(b: tf.Tensor, i, size: int, big_endian) -> tf.Tensor:
    """An unsigned ``size``-byte integer at ``b[i:]``."""
    i = tf.cast(i, tf.int64)
    le = tf.add_n([_at(b, i + k) * (256 ** k) for k in range(size)])
    be = tf.add_n([_at(b, i + k) * (256 ** (size - 1 - k)) for k in range(size)])
    return tf.where(tf.cast(big_endian, tf.bool), be, le)


def _starts_with(b: tf.Tensor, offset: int, magic: bytes) -> tf.Tensor:
    return tf.reduce_all(tf.equal(b[offset:offset + len(magic)], tf.constant(list(magic), tf.int64)))


def image_size(contents: tf.Tensor) -> tf.Tensor:
    """``[height, width]`` (int64) from the header of a JPEG, PNG, GIF, BMP or WebP file;
    ``[0, 0]`` for anything else (the decoder then reports what is wrong)."""
    b = _head(contents, 32)
    zero = tf.constant(0, tf.int64)
    png = (_uint(b, 20, 4, True), _uint(b, 16, 4, True))
    gif = (_uint(b, 8, 2, False), _uint(b, 6, 2, False))
    bmp_core = tf.equal(_uint(b, 14, 4, False), 12)   # BITMAPCOREHEADER: 16-bit fields
    bmp_h = tf.where(bmp_core, _uint(b, 20, 2, False), _uint(b, 22, 4, False))
    bmp_h = tf.where(~bmp_core & (bmp_h >= 2 ** 31), 2 ** 32 - bmp_h, bmp_h)  # negative: top-down rows
    bmp = (bmp_h, tf.where(bmp_core, _uint(b, 18, 2, False), _uint(b, 18, 4, False)))
    vp8l = _uint(b, 21, 4, False)
    webp = (tf.where(_starts_with(b, 12, b"VP8X"), _uint(b, 27, 3, False) + 1,
                     tf.where(_starts_with(b, 12, b"VP8L"), (vp8l // 2 ** 14) % 2 ** 14 + 1,
                              _uint(b, 28, 2, False) % 2 ** 14)),
            tf.where(_starts_with(b, 12, b"VP8X"), _uint(b, 24, 3, False) + 1,
                     tf.where(_starts_with(b, 12, b"VP8L"), vp8l % 2 ** 14 + 1, _uint(b, 26, 2, False) % 2 ** 14)))
    is_webp = _starts_with(b, 0, b"RIFF") & _starts_with(b, 8, b"WEBP")
    cases = [(_starts_with(b, 0, b"\x89PNG\r\n\x1a\n"), png), (_starts_with(b, 0, b"GIF8"), gif),
             (_starts_with(b, 0, b"BM"), bmp), (is_webp, webp)]
    h, w = zero, zero
    for match, (ch, cw) in cases:
        h, w = tf.where(match, ch, h), tf.where(match, cw, w)
    is_jpeg = _starts_with(b, 0, b"\xff\xd8\xff")
    return tf.cond(is_jpeg, lambda: tf.cast(tf.io.extract_jpeg_shape(contents)[:2], tf.int64),
                   lambda: tf.stack([h, w]))


def _exif_tiff_start(b: tf.Tensor) -> tf.Tensor:
    """Offset of the TIFF header inside a JPEG's ``Exif`` APP1 segment, or -1."""
    def more(pos, found, k):
        marker = _at(b, pos + 1)
        return ((found < 0) & (k < _MAX_SEGMENTS) & (pos + 4 < tf.size(b, out_type=tf.int64))
                & tf.equal(_at(b, pos), 0xFF) & tf.not_equal(marker, 0xDA) & tf.not_equal(marker, 0xD9))

    def step(pos, found, k):
        marker = _at(b, pos + 1)
        exif = tf.equal(marker, 0xE1) & tf.reduce_all(tf.equal(
            tf.stack([_at(b, pos + 4 + j) for j in range(6)]), tf.constant(list(b"Exif\0\0"), tf.int64)))
        found = tf.where(exif, pos + 10, found)
        length = _uint(b, pos + 2, 2, True)
        pos = tf.where(tf.equal(marker, 0xFF), pos + 1, pos + 2 + length)  # 0xFF fill bytes
        return pos, found, k + 1

    start = (tf.constant(2, tf.int64), tf.constant(-1, tf.int64), tf.constant(0))
    return tf.while_loop(more, step, start)[1]


def exif_orientation(contents: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation tag (1..8, int64) of a JPEG; 1 (upright) when absent or invalid."""
    def read():
        b = _head(contents, _HEAD)
        t = _exif_tiff_start(b)
        big = tf.equal(_uint(b, t, 2, True), 0x4D4D)      # "MM": big-endian, "II": little-endian
        ifd = t + _uint(b, t + 4, 4, big)
        count = tf.minimum(_uint(b, ifd, 2, big), _MAX_IFD_ENTRIES)
        entry = ifd + 2 + 12 * tf.range(_MAX_IFD_ENTRIES, dtype=tf.int64)
        tags = _uint(b, entry, 2, big)
        hit = tf.equal(tags, _ORIENTATION_TAG) & (tf.range(_MAX_IFD_ENTRIES, dtype=tf.int64) < count)
        value = tf.reduce_max(tf.where(hit, _uint(b, entry + 8, 2, big), tf.zeros_like(tags)))
        ok = (t >= 0) & (value >= 1) & (value <= 8)
        return tf.where(ok, value, tf.constant(1, tf.int64))

    is_jpeg = _starts_with(_head(contents, 3), 0, b"\xff\xd8\xff")
    return tf.cond(is_jpeg, read, lambda: tf.constant(1, tf.int64))


def apply_orientation(img: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Pixels stored with EXIF ``orientation`` -> the upright view (Pillow's ``exif_transpose``)."""
    def transpose(x):
        return tf.transpose(x, [1, 0, 2])

    branches = [
        lambda: img,                                   # 1: upright
        lambda: tf.reverse(img, [1]),                  # 2: mirrored left-right
        lambda: tf.reverse(img, [0, 1]),               # 3: rotated 180
        lambda: tf.reverse(img, [0]),                  # 4: mirrored top-bottom
        lambda: transpose(img),                        # 5: transposed
        lambda: tf.reverse(transpose(img), [1]),       # 6: to be turned 90 degrees clockwise
        lambda: tf.reverse(transpose(img), [0, 1]),    # 7: transverse
        lambda: tf.reverse(transpose(img), [0]),       # 8: to be turned 90 degrees counter-clockwise
    ]
    out = tf.switch_case(tf.cast(orientation - 1, tf.int32), branches)
    out.set_shape([None, None, 3])
    return out


# A graph function: called eagerly (``leafnet predict``, file by file) it runs as one traced
# graph instead of op by op; inside tf.data or a SavedModel it is a function call.
@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def decode_image(contents: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG/PNG/BMP/GIF/WebP bytes (a scalar string) -> upright uint8 RGB ``[H, W, 3]``.

    Grayscale, RGBA, palette, 16-bit and CMYK images come out as 8-bit RGB; a GIF gives its
    first frame; a JPEG's EXIF orientation is applied. An image over :data:`MAX_PIXELS` is
    refused (``InvalidArgumentError`` "image too large: ...") before anything is decoded.
    """
    hw = image_size(contents)
    too_large = tf.debugging.Assert(hw[0] * hw[1] <= MAX_PIXELS, [tf.strings.format(
        "image too large: {}x{} pixels, over the limit of " + f"{MAX_PIXELS:,} pixels (64 megapixels)",
        (hw[1], hw[0]))])
    with tf.control_dependencies([too_large]):
        img = tf.io.decode_image(contents, channels=3, expand_animations=False, dtype=tf.uint8)
    img.set_shape([None, None, 3])
    return apply_orientation(img, exif_orientation(contents))
