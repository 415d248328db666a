"""The run folder: its paths, atomic writes, and the resolved config.

Every artifact is written to a temporary name in the same folder and renamed into
place (``os.replace`` is atomic on POSIX), so a killed run never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shlex
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from leafnet.csvcells import escape_csv_cell, unescape_csv_cell
from leafnet.errors import DataError, LeafnetError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def public_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give a file made by ``tempfile`` (0600, or 0700 for a folder) the mode an ordinary
    ``open()`` / ``mkdir`` would have given it, so artifacts are readable by a serving user."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary name keeps the final suffix (Keras insists on ``.keras``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{''.join(path.suffixes)}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        public_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def safe_filename(text: str, max_len: int = 80) -> str:
    """``text`` (a class name, an image stem, a folder name) as one harmless file-name part:
    letters, digits, ``_ . -`` kept, anything else (``/``, newlines, spaces) as ``_``, no
    leading dot (never ``..`` or a hidden file), at most ``max_len`` characters.

    Example:
        >>> safe_filename("../../etc/passwd")
        '_._.._etc_passwd'
    """
    name = re.sub(r"[^\w.-]", "_", str(text))[:max_len]
    return ("_" + name[1:] if name.startswith(".") else name) or "_"


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path`` resolved, after checking that it lies inside ``root`` (symlinks followed).

    Raises:
        LeafnetError: the path would land outside ``root``.
    """
    root, resolved = Path(root).resolve(), Path(path).resolve()
    if resolved != root and root not in resolved.parents:
        raise LeafnetError(f"refusing to write {path}: it resolves outside {root}")
    return resolved


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_csv(path: str | os.PathLike, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([escape_csv_cell(v) for v in header])   # a header may hold class names
    for row in rows:
        writer.writerow([escape_csv_cell(v) for v in row])
    write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a CSV written by :func:`write_csv`, cells unescaped (as they were before writing)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{unescape_csv_cell(k) if isinstance(k, str) else k: unescape_csv_cell(v) if isinstance(v, str) else v
                 for k, v in row.items()}
                for row in csv.DictReader(f)]


SPLIT_HEADER = ["path", "class", "subset", "sha1"]
"""The columns every ``split.csv`` has (a split written with file stats has more after them)."""


def read_split_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a ``split.csv`` (``path``, ``class``, ``subset``, ``sha1``, ...), cells unescaped:
    the one place a run's split is parsed."""
    return read_csv(path)


def save_keras(model: Any, path: str | os.PathLike) -> None:
    """``model.save`` to a temporary ``.keras`` name, then rename."""
    with atomic_path(path) as tmp:
        model.save(tmp)


class RunDir:
    """Paths of one run folder (see DESIGN.md, "The run directory")."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    config = property(lambda self: self.root / "config.yaml")
    classes = property(lambda self: self.root / "classes.json")
    split = property(lambda self: self.root / "split.csv")
    data_report = property(lambda self: self.root / "data_report.json")
    history = property(lambda self: self.root / "history.csv")
    best = property(lambda self: self.root / "best.keras")
    model = property(lambda self: self.root / "model.keras")
    metrics = property(lambda self: self.root / "metrics.json")
    plots = property(lambda self: self.root / "plots")
    backup = property(lambda self: self.root / "backup")
    cache = property(lambda self: self.root / "cache")

    def create(self) -> "RunDir":
        if self.root.exists() and not self.root.is_dir():
            raise LeafnetError(f"run folder {self.root} is a file, not a folder; choose another --run-dir")
        try:
            for d in (self.root, self.plots, self.backup):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise LeafnetError(f"cannot write to run folder {self.root}: {e.strerror or e}") from None
        return self

    def clean_temporaries(self) -> int:
        """Delete the temporary files and folders (an export's SavedModel) a killed write left
        behind, never a final name. Only while holding the folder's lock (:mod:`leafnet.runlock`):
        a live writer's temporary looks the same."""
        n = 0
        for f in sorted(self.root.rglob(".*.tmp*")):
            with contextlib.suppress(OSError):
                if f.is_dir() and not f.is_symlink():
                    shutil.rmtree(f)
                elif f.is_file():
                    f.unlink()
                else:
                    continue
                n += 1
        return n

    def read_config(self) -> dict:
        """``config.yaml`` as a mapping, once it has passed the config checks (keys, types,
        ranges): a hand-edited ``image_size: 100000`` is refused here, not by running out of
        memory later.

        Raises:
            LeafnetError: one line naming the file and the bad key.
        """
        from leafnet.config import config_from_dict, read_yaml
        from leafnet.errors import ConfigError

        values = read_yaml(self.config)     # its errors name the file already
        try:
            config_from_dict(values)
        except ConfigError as e:
            raise LeafnetError(f"{self.config}: {e} (the run folder's config was edited or damaged)") from None
        return values

    def model_remedy(self, path: Path) -> str:
        """What to do when ``path`` (this run's ``model.keras`` or ``best.keras``) is damaged."""
        from leafnet.archive import damaged_member

        rebuild = f"; delete {self.metrics} and rerun the fit command with --run-dir {self.root} to rebuild it"
        other = self.best if path == self.model else self.model
        if other.is_file():
            try:
                from leafnet.archive import check_archive

                check_archive(other, "model")
                intact = damaged_member(other) is None
            except LeafnetError:
                intact = False
            if intact:
                rebuild += f" ({other.name} in the same folder is intact)"
        return rebuild

    def read_classes(self) -> list[str]:
        try:
            return json.loads(self.classes.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise LeafnetError(f"{self.root} is not a leafnet run folder (cannot read classes.json: {e})") from None


def _number(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, as a user typed it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def default_run_dir(backbone: str, base: str | os.PathLike = "runs") -> Path:
    """``runs/<date>-<time>-<backbone>``, made unique with a counter if needed."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = Path(base) / f"{stamp}-{backbone}"
    candidate, n = root, 2
    while candidate.exists():
        candidate = root.with_name(f"{root.name}-{n}")
        n += 1
    return candidate


def is_run_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "config.yaml").is_file() and (p / "classes.json").is_file()


def io_guard(fn: Callable[[], Any], what: str) -> Any:
    """Run ``fn``; turn an OSError (disk full, permissions) into one clear line."""
    try:
        return fn()
    except OSError as e:
        raise LeafnetError(f"could not write {what}: {e.strerror or e} (previous files are intact)") from None


class Run:
    """A finished (or resumable) run folder, as returned by :func:`leafnet.fit`.

    Attributes:
        dir: the :class:`RunDir`.
        metrics: the content of ``metrics.json`` (empty until the run is complete).
    """

    def __init__(self, root: str | os.PathLike):
        self.dir = RunDir(root)

    def __repr__(self) -> str:
        acc = self.metrics.get("val_accuracy")
        return f"Run({str(self.dir.root)!r}" + (f", val_accuracy={acc:.4f})" if acc is not None else ")")

    @property
    def root(self) -> Path:
        return self.dir.root

    @property
    def metrics(self) -> dict:
        try:
            return json.loads(self.dir.metrics.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    @property
    def classes(self) -> list[str]:
        return self.dir.read_classes()

    @property
    def history(self) -> list[dict[str, Any]]:
        """``history.csv`` as rows of numbers (the phase name stays a string; empty is None)."""
        rows = read_csv(self.dir.history) if self.dir.history.exists() else []
        return [{k: _number(v) for k, v in row.items()} for row in rows]

    def summary(self) -> str:
        """The finished run in a few lines: its key metrics and the commands that come next."""
        m = self.metrics
        if not m:
            return f"run {self.root} is not complete: rerun the same command to resume it"
        where = shlex.quote(_shown(self.root))
        lines = [f"{m.get('backbone')} at {m.get('image_size')} px, {m.get('epochs')} epochs, "
                 f"{m.get('train_images')} train / {m.get('val_images')} val images"]
        if m.get("val_accuracy") is None:
            lines.append("  no validation (val_split 0): the model is the last epoch's weights")
        else:
            lines.append(f"  val accuracy {m['val_accuracy']:.2%}   mean per-class accuracy "
                         f"{m['mean_class_accuracy']:.2%}   val loss {m['val_loss']:.4f}")
        test = m.get("test")
        if test:
            lines.append(f"  test accuracy {test['accuracy']:.2%}   mean per-class accuracy "
                         f"{test['mean_class_accuracy']:.2%}   ({test['images']} held-out images)")
        lines += [f"run folder: {where}", "next:",
                  f"  leafnet evaluate {where}                     # confusion matrices, top losses",
                  f"  leafnet report {where}                       # one HTML page: curves, metrics, explanations",
                  f"  leafnet predict {where} IMAGES... --out preds.csv",
                  f"  leafnet export {where} --format savedmodel   # or keras, tflite, onnx, submission"]
        return "\n".join(lines)

    @property
    def config(self) -> dict:
        """``config.yaml``, checked (see :meth:`RunDir.read_config`)."""
        return self.dir.read_config()

    def image_size(self, model=None) -> int:
        """The square input size: ``config.yaml`` ``data.image_size``, else ``model``'s input.

        Raises:
            LeafnetError: neither tells it.
        """
        size = (self.config.get("data") or {}).get("image_size")
        if size:
            return int(size)
        if model is not None and model.input_shape[1]:
            return int(model.input_shape[1])
        raise LeafnetError(f"cannot tell the image size of run {self.root} (no data.image_size in config.yaml)")

    def split_rows(self) -> list[dict[str, str]]:
        """The rows of ``split.csv`` as written (no checks); empty when the run has none."""
        return read_split_rows(self.dir.split) if self.dir.split.is_file() else []

    def checked_split_rows(self) -> list[dict[str, str]]:
        """The rows of ``split.csv``, after checking its columns, its classes (all in
        ``classes.json``) and its files (all still there).

        Raises:
            DataError: one line naming the file and the first problem.
        """
        classes = set(self.classes)
        rows = read_split_rows(self.dir.split)
        if any(set(SPLIT_HEADER) - set(r) for r in rows[:1]):
            raise DataError(f"{self.dir.split} is not a leafnet split file (columns {', '.join(SPLIT_HEADER)} expected)")
        unknown = sorted({r["class"] for r in rows} - classes)
        if unknown:
            raise DataError(f"{self.dir.split} names class(es) that {self.dir.classes} lacks: "
                            f"{', '.join(map(repr, unknown[:5]))}")
        missing = [r["path"] for r in rows if not os.path.exists(r["path"])]
        if missing:
            raise DataError(f"{len(missing)} file(s) of {self.dir.split} no longer exist (first: {missing[0]}); "
                            "the run cannot resume on other data; use a new --run-dir")
        return rows

    def images(self, subset: str) -> tuple[list[str], list[int]]:
        """Paths and class indices of the ``subset`` (train, val or test) of the split, in
        split order, checked as :meth:`checked_split_rows` does."""
        index = {c: i for i, c in enumerate(self.classes)}
        rows = [r for r in self.checked_split_rows() if r["subset"] == subset]
        return [r["path"] for r in rows], [index[r["class"]] for r in rows]

    def load_model(self, which: str = "model", trust: bool = False):
        """Load ``model.keras`` (or ``best.keras`` with ``which="best"``) in Keras safe mode,
        or with ``trust`` let it hold Lambda layers and other code (see :mod:`leafnet.trust`).

        Raises:
            LeafnetError: the file is missing, damaged (with what to do) or refused.
        """
        from leafnet.trust import load_model_file

        path = self.dir.model if which == "model" else self.dir.best
        if not path.is_file():
            raise LeafnetError(f"{self.root} has no {path.name} (is the run finished? see: leafnet fit --run-dir ...)")
        return load_model_file(path, "model", trust=trust, remedy=lambda: self.dir.model_remedy(path))
