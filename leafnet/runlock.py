"""The run-folder lock: one process at a time writes a run folder.

:func:`hold` takes an exclusive ``flock`` on ``ROOT/.lock``, a file holding the holder's PID
and command line, for the length of a block. The kernel drops the lock when the process
ends, however it ends, so a SIGKILLed run never blocks its own rerun (its stale ``.lock``
file is simply locked again). A second process is refused at once with one line naming
the holder. Inside one process the lock is re-entrant per folder: a flock taken on a new
descriptor would conflict with the process's own, so held folders are kept in a registry
(cv holds its folder while each fold's fit holds the fold's; a fit may hold it again).

The lock file is removed on release, and the folders the lock had to create are removed
again if they stayed empty: a refused start leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from leafnet.errors import LeafnetError

LOCK_NAME = ".lock"
RUN_DIR_HINT = "wait for it or choose another --run-dir"


@dataclasses.dataclass
class _Held:
    fd: int
    created: list[Path]
    count: int = 1


_held: dict[Path, _Held] = {}
_registry = threading.Lock()


@contextlib.contextmanager
def hold(root: str | os.PathLike, hint: str = RUN_DIR_HINT) -> Iterator[Path]:
    """Hold ``root``'s lock (creating the folder) for the block; yield the resolved folder.

    Raises:
        LeafnetError: another process holds it (naming its PID and command, then ``hint``),
            or the folder is a file or cannot be written.
    """
    root = Path(root).expanduser().resolve()
    with _registry:
        entry = _held.get(root)
        if entry is not None:
            entry.count += 1
        else:
            entry = _held[root] = _acquire(root, hint)
    try:
        yield root
    finally:
        with _registry:
            entry.count -= 1
            if entry.count == 0:
                del _held[root]
                _release(root, entry)


def held(root: str | os.PathLike) -> bool:
    """Whether this process holds ``root``'s lock."""
    return Path(root).expanduser().resolve() in _held


def _acquire(root: Path, hint: str) -> _Held:
    if root.exists() and not root.is_dir():
        raise LeafnetError(f"run folder {root} is a file, not a folder; choose another --run-dir")
    created: list[Path] = []
    path = root / LOCK_NAME
    try:
        for _ in range(100):
            created += _make_folders(root)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except FileNotFoundError:   # a releasing holder removed the folder it had made
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise LeafnetError(f"run folder {root} is in use by {holder}: {hint}") from None
            if _same_file(fd, path):    # not a lock file its holder unlinked as we opened it
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n{_command()}\n".encode())
                return _Held(fd, created)
            os.close(fd)
        raise LeafnetError(f"could not lock run folder {root}: its lock file keeps changing")
    except OSError as e:
        _remove_empty(created)
        raise LeafnetError(f"cannot write to run folder {root}: {e.strerror or e}") from None
    except BaseException:
        _remove_empty(created)
        raise


def _release(root: Path, entry: _Held) -> None:
    path = root / LOCK_NAME
    if _same_file(entry.fd, path):     # unlinked while still held: the next process locks a new file
        with contextlib.suppress(OSError):
            path.unlink()
    os.close(entry.fd)
    _remove_empty(entry.created)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _make_folders(root: Path) -> list[Path]:
    """Create ``root`` and its missing parents; return the ones created, deepest last."""
    missing = [p for p in (root, *root.parents) if not p.is_dir()][::-1]
    made = []
    for p in missing:
        with contextlib.suppress(FileExistsError):
            p.mkdir()
            made.append(p)
    return made


def _remove_empty(folders: list[Path]) -> None:
    for p in reversed(folders):
        try:
            p.rmdir()
        except OSError:
            return


def _holder(fd: int) -> str:
    """``PID n (command)`` from the lock file (which its holder writes just after locking)."""
    for _ in range(20):
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        pid, _, command = text.partition("\n")
        if pid.strip().isdigit():
            command = command.strip()
            return f"PID {pid.strip()}" + (f" ({command})" if command else "")
        time.sleep(0.01)
    return "another process"


def _command() -> str:
    """This process's command line as a user would type it (``leafnet fit ...``)."""
    argv = list(sys.argv) or [""]
    name = [Path(argv[0]).name]
    if name[0] in ("__main__.py", "cli.py") and Path(argv[0]).parent.name == "leafnet":
        name = ["leafnet"]
    elif name[0] in ("", "-c", "-m"):
        name = [Path(sys.executable).name, *argv[:1]]
    text = shlex.join(name + argv[1:])
    return " ".join(text.split())[:300]    # one line, however long the command was
