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
    """What a reader sees: pictures, links (with their text), captions, headings, table rows."""

    TEXT = ("td", "a", "figcaption", "h2", "h3")

    def __init__(self):
        super().__init__()
        self.srcs, self.hrefs, self.ids, self.cells = [], [], [], []
        self.links, self.captions, self.headings, self.rows = [], [], [], []
        self._open = []                      # [tag, text] of the text elements open now (an <a> in an <h3>)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a["src"])
        if tag == "a":
            self.hrefs.append(a["href"])
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "tr":
            self.rows.append([])
        if tag in self.TEXT:
            self._open.append([tag, ""])

    def handle_data(self, data):
        for entry in self._open:
            entry[1] += data

    def handle_endtag(self, tag):
        if not self._open or self._open[-1][0] != tag:
            return
        _, text = self._open.pop()
        if tag == "td":
            self.cells.append(text)
            self.rows[-1].append(text)
        elif tag == "a":
            self.links.append((self.hrefs[-1], text))
        elif tag == "figcaption":
            self.captions.append((self.srcs[-1], text))
        else:
            self.headings.append(text)


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def evaluated_run(shared_run, leaves, tmp_path_factory):
    """A copy of the shared run (the report writes into the run folder), evaluated on val with
    and without TTA and on a held-out folder named ``test``, exported, with a search result."""
    from PIL import Image

    from leafnet.evaluate import evaluate
    from leafnet.export import export
    from leafnet.runs import write_csv

    _, run_dir = shared_run
    base = tmp_path_factory.mktemp("report")
    root = base / "run"
    shutil.copytree(run_dir, root, ignore=shutil.ignore_patterns("backup", "cache", "explain", "report*", "eval",
                                                                 "export"))
    evaluate(root, subset="val")
    evaluate(root, subset="val", tta=True)
    for name in sorted(p.name for p in leaves.iterdir()):
        (base / "test" / name).mkdir(parents=True)
        for f in sorted((leaves / name).iterdir())[:3]:
            shutil.copy(f, base / "test" / name / f.name)
    evaluate(root, data=base / "test")                                  # eval/test.json
    export(root, format="keras")
    write_csv(root / "trials.csv", ["trial", "lr", "dropout", "val_accuracy"],
              [["t0", 0.003, 0.2, 0.41], ["t1", 0.0007, 0.5, 0.62]])
    Image.new("RGB", (300, 200), (120, 40, 160)).save(root / "plots" / "search.png")
    return root


@pytest.fixture
def run_copy(evaluated_run, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(evaluated_run, root)
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
    # each picture once: the learning rate is in the curves, one confusion matrix
    assert links.srcs == ["report_files/class_counts.png", "plots/curves.png", "eval/val_confusion_normalized.png",
                          "eval/val_top_losses.png", "explain/report/grid.png", "plots/search.png"]
    assert len({(run_copy / s).read_bytes() for s in links.srcs}) == len(links.srcs)
    for ref in links.srcs + [h for h in links.hrefs if not h.startswith("#")]:
        assert not ref.startswith(("/", "file:", "http")), ref                   # relative: the folder travels
        target = (run_copy / ref).resolve()
        assert target.is_file(), ref
        assert run_copy.resolve() in target.parents
    for src in links.srcs:
        assert (run_copy / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the per-class table holds evaluate's numbers, the search table the trials
    ev = json.loads((run_copy / "eval" / "val.json").read_text())
    cls = ev["classes"][0]
    i = links.cells.index(cls)
    assert float(links.cells[i + 2]) == pytest.approx(ev["per_class"][cls]["recall"] or 0.0, abs=1e-4)
    assert int(links.cells[i + 4]) == ev["per_class"][cls]["support"]
    assert "t1" in links.cells and "0.6200" in links.cells
    # the phases table names the epoch each phase's weights were restored to, as fit recorded it
    metrics = json.loads((run_copy / "metrics.json").read_text())
    phases = {r[0]: r for r in links.rows if r and r[0] in ("transfer", "finetune")}
    assert {p: int(r[5]) for p, r in phases.items()} == metrics["restored_epochs"]
    assert "restored weights" in dict(links.captions)["plots/curves.png"]

    # the explanation sample: two validation images per class (at most 8), Grad-CAM
    from leafnet.runs import read_csv

    rows = read_csv(run_copy / "explain" / "report" / "index.csv")
    assert len(rows) == min(8, 2 * len(ev["classes"]))
    assert sorted({r["true"] for r in rows}) == sorted(ev["classes"])


def test_one_row_normalised_confusion_matrix_on_the_page_and_the_others_linked(run_copy):
    from leafnet.report import write_report

    links = _parse(write_report(run_copy, explanations=False))
    assert [s for s in links.srcs if "confusion" in s] == ["eval/val_confusion_normalized.png"]
    assert dict(links.captions)["eval/val_confusion_normalized.png"] == \
        "val, 20 images, row-normalised: each row (a true class) sums to 1; counts in brackets"
    assert "Confusion matrix" in links.headings
    others = [("eval/val_confusion.png", "val, counts"),
              ("eval/val_tta_confusion_normalized.png", "val (TTA), row-normalised"),
              ("eval/val_tta_confusion.png", "val (TTA), counts"),
              ("eval/test_confusion_normalized.png", "test, row-normalised"), ("eval/test_confusion.png", "test, counts"),
              ("plots/confusion_val.png", "validation at the end of fit, row-normalised")]
    for href, text in others:
        assert (href, text) in links.links
        assert (run_copy / href).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_evaluation_side_by_side_tta_labelled(run_copy):
    import json

    from leafnet.report import write_report

    links = _parse(write_report(run_copy, explanations=False))
    ev = {stem: json.loads((run_copy / "eval" / f"{stem}.json").read_text()) for stem in ("val", "val_tta", "test")}
    rows = [r for r in links.rows if r and r[0] in ("val", "val (TTA)", "test")]
    assert [r[0] for r in rows] == ["val", "val (TTA)", "test"]
    for row, stem in zip(rows, ("val", "val_tta", "test")):
        assert row[1:3] == [str(ev[stem]["images"]), f"{ev[stem]['accuracy']:.4f}"], stem
    assert rows[2][1] == "12"                                                   # the held-out folder: 3 a class
    tta_links = [(h, t) for h, t in links.links if "_tta" in h]
    assert len(tta_links) >= 8                      # report, matrices, grid, predictions, and in Files
    assert all("TTA" in t.upper() for _, t in tta_links), tta_links
    assert ("eval/val_tta_top_losses.png", "val (TTA), grid") in tta_links


def test_a_tta_evaluation_alone_is_captioned_tta(run_copy):
    from leafnet.report import write_report

    for f in (run_copy / "eval").iterdir():
        if not f.name.startswith("val_tta"):
            f.unlink()
    links = _parse(write_report(run_copy, explanations=False))
    shown = [s for s in links.srcs if s.startswith("eval/")]
    assert shown == ["eval/val_tta_confusion_normalized.png", "eval/val_tta_top_losses.png"]
    captions = dict(links.captions)
    assert captions[shown[0]].startswith("val (TTA), 20 images, row-normalised")
    assert captions[shown[1]].startswith("val (TTA): the 16 highest-loss images")
    assert "Per class (val (TTA), 20 images)" in links.headings
    assert "Highest losses (val (TTA)): eval/val_tta_predictions.csv" in links.headings
    assert [r[0] for r in links.rows if r and r[0] in ("val", "val (TTA)")] == ["val (TTA)"]


def test_files_lists_eval_and_export(run_copy):
    from leafnet.report import write_report

    links = _parse(write_report(run_copy, explanations=False))
    made = sorted(p.relative_to(run_copy).as_posix() for d in ("eval", "export") for p in (run_copy / d).rglob("*")
                  if p.is_file())
    assert "export/keras/model.keras" in made and "eval/test_predictions.csv" in made
    listed = {h: t for h, t in links.links if h.startswith(("eval/", "export/")) and t == h.rsplit("/", 1)[-1]}
    assert sorted(listed) == made


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
