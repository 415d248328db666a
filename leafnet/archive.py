"""What a ``.keras`` archive may declare before leafnet extracts any of it.

A ``.keras`` file is a zip: ``config.json`` and ``metadata.json`` (read whole into memory
and parsed), ``model.weights.h5`` (the arrays) and optional ``assets/``. A zip member
states its uncompressed size in the archive's directory, and Python's ``zipfile`` never
returns more than that, so comparing the declared sizes with limits before reading
bounds the memory a load can take: a 1.5 MB file declaring a 1.5 GiB ``config.json`` is
refused in milliseconds instead of being inflated and parsed.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from leafnet.errors import LeafnetError

METADATA_LIMIT = 64 << 20     # config.json, metadata.json and any other small member
WEIGHTS_LIMIT = 8 << 30       # one weights member (model.weights.h5 / .npz) or asset
TOTAL_LIMIT = 16 << 30        # every member together
RATIO_FLOOR = 1 << 30         # a member above this size ...
MAX_RATIO = 100               # ... may not inflate to more than this many times its stored bytes
WEIGHTS_SUFFIXES = (".h5", ".npz")


class DamagedArchive(LeafnetError):
    """The file is not a readable ``.keras`` archive (truncated, overwritten, not a zip)."""


def size_text(n: int) -> str:
    """``1.5 GiB``, ``64 MiB``, ``6.8 KiB``: bytes as a person reads them."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def _limit(name: str) -> int:
    return WEIGHTS_LIMIT if name.endswith(WEIGHTS_SUFFIXES) or name.startswith("assets/") else METADATA_LIMIT


def check_archive(path: str | os.PathLike, what: str) -> None:
    """Refuse a ``.keras`` file that is not a readable zip, or whose members declare more than
    the limits above, before anything is extracted (only the zip directory is read).

    Raises:
        DamagedArchive: ``{what} {path}: damaged, ...``.
        LeafnetError: ``{what} {path}: refused, {member} declares ...``.
    """
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise DamagedArchive(f"{what} {path}: damaged, not a readable .keras archive ({e})") from None
    except OSError as e:
        raise LeafnetError(f"{what} {path}: cannot read the file ({e.strerror or e})") from None
    names = {i.filename for i in infos}
    if "config.json" not in names:
        raise DamagedArchive(f"{what} {path}: damaged, not a .keras archive (no config.json inside)")
    total = 0
    for info in infos:
        limit = _limit(info.filename)
        if info.file_size > limit:
            raise LeafnetError(f"{what} {path}: refused, {info.filename} declares {size_text(info.file_size)} "
                               f"(limit {size_text(limit)})")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise LeafnetError(f"{what} {path}: refused, {info.filename} declares {size_text(info.file_size)} "
                               f"but stores {size_text(info.compress_size)} (a decompression bomb)")
        total += info.file_size
    if total > TOTAL_LIMIT:
        raise LeafnetError(f"{what} {path}: refused, its members declare {size_text(total)} together "
                           f"(limit {size_text(TOTAL_LIMIT)})")


def damaged_member(path: str | os.PathLike) -> str | None:
    """Why a ``.keras`` archive is damaged (a member whose CRC or compressed stream is
    wrong), or None when every member reads back intact. Reads every member once; the sizes
    were bounded by :func:`check_archive`."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        return str(e) or type(e).__name__
    except Exception as e:  # noqa: BLE001 - zlib.error and the like: a damaged stream
        return f"{type(e).__name__}: {e}"
    return f"{bad} does not match its checksum" if bad else None


def is_archive_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".keras"
