"""What the image decoders say about a bad file: TensorFlow's error, cleaned to its one
line, and libjpeg's stderr chatter, dropped.

A scan or ``leafnet predict`` reports every file it cannot use with the reason
(:func:`clean_tf_error`); the same decoder also writes its own lines to file
descriptor 2 from C (libjpeg's ``Corrupt JPEG data: ...``, TensorFlow's
``jpeg_mem.cc`` log), which would repeat that report on the console without naming
the file. :func:`quiet_decoders` drops those lines and re-emits everything else.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

_ASSERT_MESSAGE = (re.compile(r'Summarized data: b"(.*?)"(?:\s|$)'), re.compile(r"Summarized data: b'(.*?)'(?:\s|$)"),
                   re.compile(r"assertion failed: \[(.*?)\]"))
# TensorFlow's annotations around a status message: ``[[{{node x}}]]``, ``[Op:x] name: y``,
# the eager ``{{function_node ...}}`` prefix.
_ANNOTATION = re.compile(r"\[\[.*?\]\]|\[Op:[^\]]*\](?:\s*name:[^\n]*)?|\{\{function_node [^}]*\}\}", re.DOTALL)


def clean_tf_error(e: BaseException) -> str:
    """The first line of what a TensorFlow op said, without TensorFlow's wrapping.

    Graph errors read ``Graph execution error: / Detected at node ... (traceback) /
    MESSAGE [[{{node ...}}]] [Op:...]``, eager ones ``{{function_node ...}} MESSAGE [Op:...]``;
    both give ``MESSAGE``. A failed ``tf.debugging.Assert`` (the decoder's pixel limit)
    gives its text.

    Example: ``clean_tf_error(e)`` -> ``"Input is empty."``
    """
    text = str(getattr(e, "message", None) or e)
    for pattern in _ASSERT_MESSAGE:
        m = pattern.search(text)
        if m:
            return m.group(1)
    in_traceback = False
    for line in _ANNOTATION.sub(" ", text).splitlines():
        if line.startswith("Detected at node"):
            in_traceback = True                # its frames follow, indented
        elif in_traceback and (not line.strip() or line[:1].isspace()):
            continue
        elif line.strip() and line.strip() != "Graph execution error:":
            return line.strip()
        else:
            in_traceback = False
    return type(e).__name__


_DECODER_NOISE = re.compile(
    # libjpeg's messages (jerror.h) that a damaged file triggers, printed by its default handler
    r"(Corrupt JPEG data|Premature end of (JPEG|input) file|Warning: unknown JFIF revision|Input file read error"
    r"|Invalid JPEG file structure|Invalid SOS parameters|Inconsistent progression sequence|Bogus |Not a JPEG file"
    r"|Unsupported (marker|JPEG)|Improper call to JPEG library|Huffman table 0x|Quantization table 0x"
    r"|Unknown Adobe color transform|Empty JPEG image|Application transferred too many scanlines"
    r"|Maximum supported image dimension|Sampling factors too large)"
    # TensorFlow's own log lines from its JPEG decoder, and its notice on the first uint8
    # graph that oneDNN leaves uint8 ops to Eigen (the same results)
    r"|[IWEF]\d{4} \S+\s+\d+ ((jpeg_mem|jpeg_handle)\.cc:\d+\]|util\.cc:\d+\] oneDNN supports DT_UINT8)")


def is_decoder_noise(line: str) -> bool:
    """Whether a stderr line is a JPEG decoder's complaint about the file it decodes."""
    return bool(_DECODER_NOISE.match(line))


@contextlib.contextmanager
def quiet_decoders() -> Iterator[None]:
    """Within the block, what is written to file descriptor 2 goes to a temporary file;
    on leaving, every line but the decoders' complaints (:func:`is_decoder_noise`) is
    written back. Used around the decoding of files whose failures are reported anyway."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):          # no stderr to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines = tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not is_decoder_noise(line))
            if kept:
                os.write(2, kept.encode("utf-8"))
