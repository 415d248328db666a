"""``leafnet report``: one HTML page whose links resolve, checked in a headless browser."""

from __future__ import annotations

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.hrefs, self.ids, self.cells = [], [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a["src"])
        if tag == "a":
            self.hrefs.append(a["href"])
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "td":
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture
def run_copy(shared_run, tmp_path):
    """A copy of the shared run (the report writes into the run folder), evaluated, with a
    search result beside it."""
    from leafnet.evaluate import evaluate
    from leafnet.runs import write_csv

    _, run_dir = shared_run
    root = tmp_path / "run"
    shutil.copytree(run_dir, root, ignore=shutil.ignore_patterns("backup", "cache", "explain", "report*"))
    evaluate(root, subset="val")
    write_csv(root / "trials.csv", ["trial", "lr", "dropout", "val_accuracy"],
              [["t0", 0.003, 0.2, 0.41], ["t1", 0.0007, 0.5, 0.62]])
    shutil.copy(root / "plots" / "curves.png", root / "plots" / "search.png")
    return root


def test_report_links_resolve_and_sections_are_filled(run_copy, run_cli):
    import json

    code, out, err = run_cli("report", run_copy)
    assert code == 0, err
    page = run_copy / "report.html"
    assert out.strip() == f"report: {page}"
    links = _parse(page)
    for section in ("config", "data", "training", "metrics", "confusion", "top-losses", "explanations",
                    "search", "files"):
        assert section in links.ids
    assert len(links.srcs) >= 8
    for ref in links.srcs + [h for h in links.hrefs if not h.startswith("#")]:
        assert not ref.startswith(("/", "file:", "http")), ref                   # relative: the folder travels
        target = (run_copy / ref).resolve()
        assert target.is_file(), ref
        assert run_copy.resolve() in target.parents
    for src in links.srcs:
        assert (run_copy / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("plots/curves.png", "plots/confusion_val.png", "eval/val_confusion.png", "eval/val_top_losses.png",
                 "plots/search.png", "report_files/class_counts.png", "report_files/lr.png", "explain/report/grid.png"):
        assert name in links.srcs, name

    # the per-class table holds evaluate's numbers, the search table the trials
    ev = json.loads((run_copy / "eval" / "val.json").read_text())
    cls = ev["classes"][0]
    i = links.cells.index(cls)
    assert float(links.cells[i + 2]) == pytest.approx(ev["per_class"][cls]["recall"] or 0.0, abs=1e-4)
    assert int(links.cells[i + 4]) == ev["per_class"][cls]["support"]
    assert "t1" in links.cells and "0.6200" in links.cells

    # the explanation sample: two validation images per class (at most 8), Grad-CAM
    from leafnet.runs import read_csv

    rows = read_csv(run_copy / "explain" / "report" / "index.csv")
    assert len(rows) == min(8, 2 * len(ev["classes"]))
    assert sorted({r["true"] for r in rows}) == sorted(ev["classes"])


def test_report_embedded_and_without_explanations(run_copy):
    from leafnet.report import write_report

    path = write_report(run_copy, explanations=False, embed=True)
    links = _parse(path)
    assert links.srcs and all(s.startswith("data:image/png;base64,") for s in links.srcs)
    assert base64.b64decode(links.srcs[0].split(",", 1)[1])[:4] == b"\x89PNG"
    assert not (run_copy / "explain" / "report").exists()


def test_report_of_an_unfinished_run_names_the_missing_steps(run_copy):
    from leafnet.report import write_report

    for name in ("metrics.json", "model.keras", "best.keras", "trials.csv"):
        (run_copy / name).unlink()
    shutil.rmtree(run_copy / "eval")
    text = write_report(run_copy).read_text(encoding="utf-8")
    assert "leafnet evaluate RUN" in text and "needs a finished run" in text
    assert 'id="search"' in text                     # plots/search.png is still there


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path, run_cli):
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and "is not a leafnet run folder" in err


def test_report_renders_in_headless_chromium(run_copy, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    from PIL import Image

    from leafnet.report import write_report

    page = write_report(run_copy, explanations=False)
    shot = tmp_path / "shot.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
           page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert img.shape[:2] == (2000, 1200)
    assert img.std() > 20                                   # not a blank page
    assert np.abs(img[20, 20] - (31, 78, 61)).max() < 12    # the header's colour: the CSS applied
    # the pictures loaded: the data section's bar chart puts matplotlib's blue somewhere on screen
    blue = (np.abs(img - (31, 119, 180)).max(axis=-1) < 10).sum()
    assert blue > 2000
