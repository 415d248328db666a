"""Scan a folder of class sub-folders: what is used, what is skipped and why.

Every file found under the folder ends up either in :attr:`Scan.files` or in
:attr:`Scan.skipped` with a reason, so the counts add up. Each candidate image is
decoded once with the same TensorFlow decoder the training pipeline uses, because a
truncated JPEG otherwise stops training mid-epoch without naming the file. Only regular
files within the size limit are read (:mod:`leafnet.data.files`); a class folder that links
back into the data folder is not followed, and a folder that cannot be listed is reported.
"""

from __future__ import annotations

import collections
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from leafnet import console
from leafnet.data.codec_messages import clean_tf_error, quiet_decoders
from leafnet.data.files import FileStat, UnreadableFile, file_problem, hash_file
from leafnet.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
IGNORED_DIRS = ("__MACOSX",)


@dataclass
class Scan:
    """The result of scanning one folder.

    Attributes:
        root: the scanned folder.
        classes: class names in label order.
        files: usable images, in a stable order (class, then path).
        labels: label index of each file.
        hashes: content hash (sha1) of each file.
        stats: size, mtime and inode of each file as it was hashed (see :mod:`leafnet.data.verify`).
        skipped: ``{"path", "reason"}`` for every file not used.
    """

    root: Path
    classes: list[str]
    files: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    stats: list[FileStat] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = collections.Counter(self.labels)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}

    def duplicates(self) -> list[list[int]]:
        """Groups (indices into files) of byte-identical images, largest first."""
        by_hash: dict[str, list[int]] = collections.defaultdict(list)
        for i, h in enumerate(self.hashes):
            by_hash[h].append(i)
        groups = [g for g in by_hash.values() if len(g) > 1]
        return sorted(groups, key=len, reverse=True)

    def report(self) -> dict:
        return {"root": str(self.root), "found": len(self.files) + len(self.skipped),
                "used": len(self.files), "skipped": self.skipped, "classes": self.counts()}


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _skip_reason_for_name(name: str) -> str | None:
    if name.startswith("._"):
        return "macOS resource fork (._ file)"
    if _is_hidden(name):
        return "hidden file"
    ext = os.path.splitext(name)[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        return f"not an image extension ({ext or 'none'}); allowed: {', '.join(IMAGE_EXTENSIONS)}"
    return None


def _walk(folder: Path, skipped: list[dict]) -> list[str]:
    """Image candidates under ``folder`` (recursively); everything else goes to ``skipped``,
    and so does a folder that cannot be listed (its files cannot be counted)."""
    found: list[str] = []

    def unreadable(e: OSError) -> None:
        skipped.append({"path": e.filename or str(folder), "reason": f"cannot read folder: {e.strerror or e}"})

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False, onerror=unreadable):
        dirnames.sort()
        keep = []
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if d in IGNORED_DIRS or _is_hidden(d):
                reason = "inside a __MACOSX folder" if d in IGNORED_DIRS else "inside a hidden folder"
                for sub, _, names in os.walk(full):
                    skipped.extend({"path": os.path.join(sub, n), "reason": reason} for n in sorted(names))
            elif os.path.islink(full):
                skipped.append({"path": full, "reason": "symbolic link to a folder (not followed)"})
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            reason = _skip_reason_for_name(name) or file_problem(full)   # FIFOs, devices, huge files
            if reason:
                skipped.append({"path": full, "reason": reason})
            else:
                found.append(full)
    return found


def _hash_one(path: str) -> tuple[str | None, FileStat | None, str | None]:
    try:
        return (*hash_file(path), None)
    except UnreadableFile as e:
        return None, None, e.reason


def _hash_all(paths: Sequence[str]) -> list[tuple[str | None, FileStat | None, str | None]]:
    """``(sha1, stat, None)`` or ``(None, None, reason)`` per path, read in parallel."""
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        return list(pool.map(_hash_one, paths))


def check_decodable(paths: Sequence[str], progress: bool = False) -> dict[int, str]:
    """Decode every file with the training decoder; return ``{index: reason}`` of the failures.

    Decoding runs in parallel through tf.data. ``ignore_errors`` drops the failures;
    the missing indices are the bad files, which are then decoded one by one to get
    the reason.
    """
    if not paths:
        return {}
    with quiet_decoders():     # libjpeg's lines would repeat, unnamed, what the failures say
        return _decode_all(paths, progress)


def _decode_all(paths: Sequence[str], progress: bool) -> dict[int, str]:
    import tensorflow as tf

    from leafnet.data.pipeline import decode_image, prefetched

    ds = tf.data.Dataset.from_tensor_slices((list(paths), tf.range(len(paths), dtype=tf.int64)))
    ds = ds.map(lambda p, i: (tf.shape(decode_image(tf.io.read_file(p)))[:2], i),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    ds = prefetched(ds.ignore_errors().batch(256))
    ok = set()
    bar = _progress(len(paths), "checking images") if progress else None
    for shapes, idx in ds:
        bad_shape = (shapes.numpy() <= 0).any(axis=1)
        ok.update(int(i) for i, b in zip(idx.numpy(), bad_shape) if not b)
        if bar:
            bar.add(len(idx))
    failures = {}
    for i in range(len(paths)):
        if i in ok:
            continue
        try:
            img = decode_image(tf.io.read_file(paths[i]))
            failures[i] = "image has no pixels" if min(img.shape[:2]) <= 0 else "could not be decoded"
        except (tf.errors.OpError, ValueError) as e:
            failures[i] = f"cannot decode: {clean_tf_error(e)}"
    return failures


def _progress(total: int, label: str):
    console.info(f"{label}: {total} files")
    return console.progress_bar(total, unit_name="file")


LINK_INSIDE = "symbolic link to a folder inside the data folder (not followed: its images would be labelled twice)"
LINK_AROUND = "symbolic link to a folder that holds the data folder (not followed: its images would be labelled twice)"


def _link_overlap(link: str, root: str) -> str | None:
    """Why a class folder that is a symbolic link must not be followed, or None: its target is
    the data folder, lies inside it, or holds it."""
    target = os.path.realpath(link)
    if os.path.commonpath([target, root]) == root:
        return LINK_INSIDE
    if os.path.commonpath([target, root]) == target:
        return LINK_AROUND
    return None


def list_class_folders(root: Path, skipped: list[dict]) -> list[str]:
    """The class folder names under ``root``, sorted; what is not a class folder goes to ``skipped``.

    Raises:
        DataError: ``root`` cannot be listed.
    """
    real_root = os.path.realpath(root)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"cannot read data folder {root}: {e.strerror or e}") from None
    names = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=True):
            overlap = _link_overlap(entry.path, real_root) if entry.is_symlink() else None
            if entry.name in IGNORED_DIRS or _is_hidden(entry.name):
                reason = "inside a __MACOSX folder" if entry.name in IGNORED_DIRS else "inside a hidden folder"
                for sub, _, files in os.walk(entry.path):
                    skipped.extend({"path": os.path.join(sub, n), "reason": reason} for n in sorted(files))
            elif overlap:
                skipped.append({"path": entry.path, "reason": overlap})
            else:
                names.append(entry.name)
        else:
            skipped.append({"path": entry.path, "reason": "not inside a class folder"})
    return names


def list_candidates(root: str | os.PathLike, labelled: bool = True) -> tuple[list[str], list[dict]]:
    """``(image candidates, skipped)`` under ``root`` as a scan finds them, nothing read or decoded:
    in its class folders (``labelled``), or anywhere under it."""
    root, skipped = Path(root), []
    if not labelled:
        return _walk(root, skipped), skipped
    found = [p for name in list_class_folders(root, skipped) for p in _walk(root / name, skipped)]
    return found, skipped


def folder_reasons(scan: Scan) -> dict[str, str]:
    """``{class: why its folder could not be read}`` for the classes whose folder could not be listed."""
    unreadable = {Path(s["path"]).name: s["reason"] for s in scan.skipped
                  if s["reason"].startswith("cannot read folder") and Path(s["path"]).parent.resolve() == scan.root}
    return {name: unreadable[name] for name in scan.classes if name in unreadable}


def scan_folder(root: str | os.PathLike, classes: Sequence[str] | None = None,
                check: bool = True, progress: bool = False, strict: bool = True) -> Scan:
    """Scan ``root``: one sub-folder per class, images in nested folders belong to their top folder.

    Args:
        root: the folder.
        classes: expected class names in label order (e.g. a run's ``classes.json``).
            A folder with a missing or an extra class is refused, naming it.
        check: decode every image once and skip the ones that fail.
        progress: print a progress bar.
        strict: refuse a class with no usable image or a single class (``data check``
            reports them instead).

    Returns:
        A :class:`Scan`.

    Raises:
        DataError: missing or empty folder, no class folders, a class with no usable image,
            fewer than two classes, or class names that do not match ``classes``.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"data path is not a folder: {root}")
    skipped: list[dict] = []
    names = list_class_folders(root, skipped)
    if not names:
        raise DataError(f"no class sub-folders in {root}: expected one sub-folder per class, e.g. {root}/cat/*.jpg")
    if classes is not None:
        missing = [c for c in classes if c not in names]
        extra = [n for n in names if n not in classes]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing class folder(s): {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"unexpected class folder(s): {', '.join(map(repr, extra))}")
            raise DataError(f"{root} does not match the run's classes ({'; '.join(parts)})")
        names = list(classes)
    scan = Scan(root=root.resolve(), classes=names, skipped=skipped)

    candidates: list[tuple[str, int]] = []
    for label, name in enumerate(names):
        for path in _walk(root / name, skipped):
            candidates.append((path, label))

    hashed = _hash_all([p for p, _ in candidates])
    readable = []
    for (path, label), (digest, st, err) in zip(candidates, hashed):
        if err:
            skipped.append({"path": path, "reason": err})
        else:
            readable.append((path, label, digest, st))

    failures = check_decodable([p for p, _, _, _ in readable], progress=progress) if check else {}
    for i, (path, label, digest, st) in enumerate(readable):
        if i in failures:
            skipped.append({"path": path, "reason": failures[i]})
        else:
            scan.files.append(path)
            scan.labels.append(label)
            scan.hashes.append(digest)
            scan.stats.append(st)

    if not strict:
        return scan
    counts = scan.counts()
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        why = folder_reasons(scan)
        named = ", ".join(f"{c!r} ({why[c]})" if c in why else repr(c) for c in empty)
        raise DataError(f"class folder(s) with no usable image in {root}: {named} "
                        f"(see skipped files with: leafnet data check {root})")
    if len(names) < 2 and classes is None:
        raise DataError(f"{root} has a single class folder ({names[0]!r}); a classifier needs at least two")
    return scan


def scan_images(root: str | os.PathLike, check: bool = True, progress: bool = False) -> Scan:
    """Scan ``root`` for images, ignoring any class structure: a flat folder of unlabelled
    images, or a labelled folder whose labels are not wanted (self-supervised pre-training).

    Every image under ``root`` (recursively, skipping what :func:`scan_folder` skips) gets
    label 0 of the single class ``"image"``.

    Raises:
        DataError: missing folder, or no usable image in it.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}" if not root.exists() else f"data path is not a folder: {root}")
    skipped: list[dict] = []
    candidates = _walk(root, skipped)
    readable = []
    for path, (digest, st, err) in zip(candidates, _hash_all(candidates)):
        if err:
            skipped.append({"path": path, "reason": err})
        else:
            readable.append((path, digest, st))
    failures = check_decodable([p for p, _, _ in readable], progress=progress) if check else {}
    scan = Scan(root=root.resolve(), classes=["image"], skipped=skipped)
    for i, (path, digest, st) in enumerate(readable):
        if i in failures:
            skipped.append({"path": path, "reason": failures[i]})
        else:
            scan.files.append(path)
            scan.labels.append(0)
            scan.hashes.append(digest)
            scan.stats.append(st)
    if not scan.files:
        raise DataError(f"no usable image in {root} (see skipped files with: leafnet data check {root})")
    return scan
