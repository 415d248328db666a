"""Reading an image file safely: regular files only, and none larger than :data:`MAX_FILE_BYTES`.

A FIFO named ``x.jpg`` blocks a reader forever and ``/dev/zero`` linked as ``x.jpg`` never
ends, so every file is checked after its links are resolved (``os.stat``) and again on the
opened descriptor (``os.fstat``: the path may change in between) before a byte is read.
The FIFO is opened non-blocking so that the check itself cannot hang.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import NamedTuple

MAX_FILE_BYTES = 256 * 2 ** 20
"""256 MiB: larger files are skipped unread (a 64-megapixel PNG is about 200 MB)."""

NOT_REGULAR = "not a regular file"


class FileStat(NamedTuple):
    """What identifies a file's content cheaply: it differs when the file is rewritten or
    another file takes its name (a folder renamed over another)."""

    size: int
    mtime_ns: int
    inode: int


class UnreadableFile(Exception):
    """The file cannot be used; ``reason`` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def too_large(size: int) -> str:
    return f"image too large: {size:,} bytes, over the limit of {MAX_FILE_BYTES:,} bytes (256 MiB)"


def _problem(st: os.stat_result) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return NOT_REGULAR
    if st.st_size > MAX_FILE_BYTES:
        return too_large(st.st_size)
    return None


def _os_reason(path: str, e: OSError) -> str:
    if isinstance(e, FileNotFoundError) and os.path.islink(path):
        return "broken symbolic link"
    return f"cannot read file: {e.strerror or e}"


def file_problem(path: str) -> str | None:
    """Why ``path`` cannot be read as an image file (links followed), or None; opens nothing."""
    try:
        return _problem(os.stat(path))
    except OSError as e:
        return _os_reason(path, e)


def file_stat(path: str) -> FileStat:
    st = os.stat(path)
    return FileStat(st.st_size, st.st_mtime_ns, st.st_ino)


def _open(path: str):
    """``(binary file, FileStat)`` of a regular file within the size limit."""
    reason = file_problem(path)
    if reason:
        raise UnreadableFile(reason)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise UnreadableFile(_os_reason(path, e)) from None
    st = os.fstat(fd)
    reason = _problem(st)
    if reason:
        os.close(fd)
        raise UnreadableFile(reason)
    return os.fdopen(fd, "rb"), FileStat(st.st_size, st.st_mtime_ns, st.st_ino)


def _chunks(f, limit: int = MAX_FILE_BYTES):
    """The file's bytes in chunks; refused once more than ``limit`` were read (it grew)."""
    total = 0
    for chunk in iter(lambda: f.read(1 << 20), b""):
        total += len(chunk)
        if total > limit:
            raise UnreadableFile(too_large(total))
        yield chunk


def read_file(path: str) -> bytes:
    """The bytes of ``path``.

    Raises:
        UnreadableFile: not a regular file, too large, missing or unreadable.
    """
    f, _ = _open(path)
    try:
        with f:
            return b"".join(_chunks(f))
    except OSError as e:
        raise UnreadableFile(_os_reason(path, e)) from None


def hash_file(path: str) -> tuple[str, FileStat]:
    """``(sha1 hex digest, FileStat)`` of ``path``, the stat taken on the descriptor read.

    Raises:
        UnreadableFile: as :func:`read_file`.
    """
    f, st = _open(path)
    h = hashlib.sha1()
    try:
        with f:
            for chunk in _chunks(f):
                h.update(chunk)
    except OSError as e:
        raise UnreadableFile(_os_reason(path, e)) from None
    return h.hexdigest(), st
