"""The synthetic leaves are byte-identical to the recorded ones (tools/synth_hashes.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import PIL

_TOOL = Path(__file__).resolve().parents[2] / "tools" / "synth_hashes.py"
_spec = importlib.util.spec_from_file_location("synth_hashes", _TOOL)
synth_hashes = sys.modules.setdefault("synth_hashes", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(synth_hashes)


def _differences(want: dict, got: dict) -> list:
    return [k for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]


def test_every_species_and_option_matches_the_recorded_hashes():
    want = json.loads(synth_hashes.FIXTURE.read_text())
    got = synth_hashes.current()
    assert len(want["pixels"]) == 330 and len(want["files"]) == 274
    assert _differences(want["pixels"], got["pixels"]) == []
    if want["pillow"] == PIL.__version__:  # another encoder may write other bytes for the same pixels
        assert _differences(want["files"], got["files"]) == []
