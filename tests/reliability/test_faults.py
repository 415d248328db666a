"""Faults injected into fit + export (tools/fault_fit.py, one case of each kind here; the
figures in docs/reliability.md come from 300): a kill, a damaged backup, a second job on the
same folder, a full disk, changed images. Each ends in a resume equal to the uninterrupted
run or a one-line refusal, never a traceback, a hang, a wrong result or a lost file."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fault_fit.py"
KINDS = ("kill", "backup", "second", "diskfull", "data")


def test_injected_faults_end_in_a_resume_or_a_one_line_refusal(tmp_path):
    out = subprocess.run([sys.executable, str(TOOL), "--cases", str(len(KINDS)), "--seed", "1",
                          "--out", str(tmp_path / "f")], capture_output=True, text=True, timeout=3600)
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert summary["problems"] == [], out.stdout[-4000:]
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert summary["cases"] == len(KINDS)
    assert {k: sum(v.values()) for k, v in summary["kinds"].items()} == {k: 1 for k in KINDS}
    assert set(summary["outcomes"]) <= {"resumed", "refused"}
