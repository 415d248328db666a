"""Model files are programs: what leafnet loads without ``--trust``, and the refusal message.

A ``.keras`` or Keras ``.h5`` model can hold a ``Lambda`` layer (Python bytecode), a
config naming any importable function, or a ``TFSMLayer`` that runs a SavedModel's graph.
Keras refuses all three in ``safe_mode``; leafnet loads every model file a user passes in
safe mode unless the command was given ``--trust`` (in Python: ``with trusted(): ...``,
or ``trust=True`` where a function takes it). Files leafnet wrote itself (a run folder's
``model.keras``) hold none of these and load in safe mode too.

Before Keras opens a ``.keras`` file, the sizes its zip members declare are checked
(:mod:`leafnet.archive`), and a load that fails on a damaged archive says so.

Weights files (``.weights.h5``, Keras 2 ``.h5`` weights) are read as arrays only (h5py):
no code runs, so they need no trust. leafnet never loads a SavedModel.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Callable, Iterator

from leafnet.errors import LeafnetError

_TRUSTED = contextvars.ContextVar("leafnet_trusted", default=False)


@contextlib.contextmanager
def trusted(enabled: bool = True) -> Iterator[None]:
    """Within the block, model files the user passes load with Keras ``safe_mode=False``
    (``--trust``): Lambda layers and arbitrary config objects are deserialized."""
    token = _TRUSTED.set(bool(enabled))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_trusted() -> bool:
    return _TRUSTED.get()


def load_model_file(path: str | os.PathLike, what: str, trust: bool | None = None,
                    remedy: Callable[[], str] | None = None, **kwargs):
    """``keras.saving.load_model(path, safe_mode=not trust)``; any failure is one LeafnetError.

    Every model file leafnet loads comes through here: a ``.keras`` archive is checked first
    (:func:`leafnet.archive.check_archive`: readable, member sizes within the limits).

    Args:
        path: a ``.keras`` or ``.h5`` model file.
        what: how the message names the file (``"model"``, ``"--weights"``).
        trust: allow unsafe deserialization; None: the enclosing :func:`trusted` block decides.
        remedy: called when the file is damaged; its text (``"; rerun ..."``) ends the message.
        **kwargs: passed to ``load_model`` (e.g. ``compile=False``).

    Raises:
        LeafnetError: the file is damaged or declares too much (said which member), needs
            ``--trust`` (said so, with the reason Keras gave), or cannot be loaded at all.
    """
    import importlib

    from leafnet.archive import DamagedArchive, check_archive, damaged_member, is_archive_path

    archive = is_archive_path(path)
    if archive:
        try:
            check_archive(path, what)
        except DamagedArchive as e:
            raise DamagedArchive(f"{e}{remedy() if remedy else ''}") from None
    import keras

    importlib.import_module("leafnet.custom_objects")  # registers leafnet's Keras objects

    trust = is_trusted() if trust is None else trust
    try:
        return keras.saving.load_model(path, safe_mode=not trust, **kwargs)
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        text = " ".join(str(e).split())
        if not trust and ("safe_mode" in text or "unsafe_deserialization" in text):
            why = text.split(". ")[0][:200]
            raise LeafnetError(f"{what} {path}: refused, the file holds code that would run on loading ({why}); "
                               "if you trust the file, rerun with --trust") from None
        bad = damaged_member(path) if archive else None
        if bad:
            raise DamagedArchive(f"{what} {path}: damaged, {bad}{remedy() if remedy else ''}") from None
        raise LeafnetError(f"{what} {path}: cannot load this {Path(path).suffix or 'model'} file safely: "
                           f"{text[:300]}") from None
