"""The job of tools/kill_fit.py with fault hooks between its import set-up and the fit."""

from __future__ import annotations

import kill_fit

# Runs in the job between kill_fit's import set-up and the fit. FAULT_FIT_ENOSPC="MODE:N:ROOT":
# the Nth write fails with ENOSPC; MODE "before" / "after" counts leafnet.runs.atomic_path
# blocks (failing before or after the block wrote its temporary file), "open" counts Python
# open() calls for writing under ROOT. FAULT_FIT_COUNT=FILE: fail nothing, write both counts
# to FILE at exit. FAULT_FIT_PAUSE="M:S": the Mth commit of backup/state.json first waits S
# seconds (a slow job, so that a second one surely finds it training).
FAULT = """
import os as _os
if {"FAULT_FIT_ENOSPC", "FAULT_FIT_COUNT", "FAULT_FIT_PAUSE"} & set(_os.environ):
    import atexit, builtins, contextlib, errno, io, json, time
    import leafnet.runs as _runs
    _pause_at, _pause = map(float, _os.environ.get("FAULT_FIT_PAUSE", "0:0").split(":"))
    _mode, _nth, _root = (_os.environ.get("FAULT_FIT_ENOSPC") or "count:0:" + sys.argv[2]).split(":", 2)
    _nth, _seen = int(_nth), {"atomic": 0, "open": 0, "state": 0}

    def _write(counter, what):
        _seen[counter] += 1
        if _seen[counter] == _nth and (counter == "open") == (_mode == "open"):
            raise OSError(errno.ENOSPC, "No space left on device", str(what))

    _atomic, _open = _runs.atomic_path, io.open

    @contextlib.contextmanager
    def _atomic_path(path):
        with _atomic(path) as tmp:
            if _os.path.basename(path) == "state.json":
                _seen["state"] += 1
                if _seen["state"] == _pause_at:
                    time.sleep(_pause)
            if _mode != "after":
                _write("atomic", path)
            yield tmp
            if _mode == "after":
                _write("atomic", path)

    def _open_for(file, mode="r", *args, **kwargs):
        if (any(c in mode for c in "wax+") and isinstance(file, (str, _os.PathLike))
                and _os.path.abspath(file).startswith(_root)):
            _write("open", file)
        return _open(file, mode, *args, **kwargs)

    _runs.atomic_path = _atomic_path   # before any leafnet module imports the name
    builtins.open = io.open = _open_for
    if _os.environ.get("FAULT_FIT_COUNT"):
        atexit.register(lambda: _open(_os.environ["FAULT_FIT_COUNT"], "w").write(json.dumps(_seen)))
"""
JOB = kill_fit.JOB_SETUP + FAULT + kill_fit.JOB_MAIN
