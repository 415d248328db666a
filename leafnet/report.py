"""``leafnet report``: one HTML page per run, readable offline.

``RUN/report.html`` gathers what the run folder holds: the config, the data (class counts,
skipped files), the training curves and learning rate, the per-class metrics, confusion
matrices, top losses, a sample of Grad-CAM explanations, filter pictures and search results.
Pictures are referenced by paths relative to the run folder (the page travels with the
folder), or with ``embed=True`` inlined as ``data:`` URIs (one file to send). Pictures the
report draws itself go to ``RUN/report_files/``; the explanation sample to ``RUN/explain/report/``.
Sections whose files are missing say which command makes them.
"""

from __future__ import annotations

import base64
import html
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from leafnet.errors import LeafnetError
from leafnet.runs import RunDir, io_guard, is_run_dir, read_csv, write_text

ASSETS = "report_files"
SAMPLE_PER_CLASS = 2
SAMPLE_MAX = 8
TABLE_ROWS = 50

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2630;background:#f6f7f9}
header{background:#1f4e3d;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;opacity:.85}nav{background:#fff;border-bottom:1px solid #dde;padding:8px 28px;position:sticky;top:0}
nav a{margin-right:14px;color:#1f4e3d;text-decoration:none;font-size:14px}
main{padding:8px 28px 40px;max-width:1250px}section{background:#fff;border:1px solid #dde;border-radius:6px;
padding:8px 20px 16px;margin:18px 0}h2{color:#1f4e3d;font-size:19px;border-bottom:1px solid #eee;padding-bottom:6px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #dde;padding:3px 9px;text-align:left}
th{background:#eef3f0}td.n{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;height:auto;
border:1px solid #eee;margin:6px 0}figure{margin:10px 0}figcaption{font-size:12px;color:#555}
.kpi{display:inline-block;margin:6px 22px 6px 0}.kpi b{display:block;font-size:22px;color:#1f4e3d}
.missing{color:#8a6d3b;background:#fcf8e3;padding:6px 10px;border-radius:4px;font-size:13px}
pre{background:#f3f3f3;padding:10px;overflow:auto;font-size:12px}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return "-" if value is None else str(value)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> dict:
    try:
        import yaml

        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError):
        return {}


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(header)
    out = ["<table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td class=\"n\">{_esc(_fmt(v))}</td>" if n else f"<td>{_esc(_fmt(v))}</td>"
                                    for v, n in zip(row, numeric)) + "</tr>")
    return "\n".join(out) + "</table>"


def _missing(text: str) -> str:
    return f'<p class="missing">{_esc(text)}</p>'


class _Page:
    """Collects sections; turns run-folder files into ``<img>`` / links (relative or embedded)."""

    def __init__(self, root: Path, embed: bool):
        self.root, self.embed = root, embed
        self.sections: list[tuple[str, str, str]] = []
        self.images: list[str] = []

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(Path(path).resolve(), self.root)).as_posix()

    def img(self, path: Path, caption: str = "") -> str:
        path = Path(path)
        if not path.is_file():
            return ""
        if self.embed:
            src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        else:
            src = self.rel(path)
        self.images.append(self.rel(path))
        cap = f"<figcaption>{_esc(caption or self.rel(path))}</figcaption>"
        return f'<figure><img src="{_esc(src)}" alt="{_esc(caption or path.name)}" loading="lazy">{cap}</figure>'

    def link(self, path: Path, text: str | None = None) -> str:
        return f'<a href="{_esc(self.rel(path))}">{_esc(text or self.rel(path))}</a>'

    def add(self, anchor: str, title: str, body: str) -> None:
        self.sections.append((anchor, title, body))

    def render(self, title: str, subtitle: str) -> str:
        nav = "".join(f'<a href="#{a}">{_esc(t)}</a>' for a, t, _ in self.sections)
        body = "\n".join(f'<section id="{a}"><h2>{_esc(t)}</h2>\n{b}\n</section>' for a, t, b in self.sections)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{_esc(title)}</title><style>{CSS}</style></head>\n<body>"
                f"<header><h1>{_esc(title)}</h1><p>{_esc(subtitle)}</p></header><nav>{nav}</nav>"
                f"<main>\n{body}\n</main></body></html>\n")


# --------------------------------------------------------------------------- sections


def _config_section(page: _Page, run: RunDir, cfg: dict) -> None:
    if not cfg:
        page.add("config", "Configuration", _missing("no config.yaml in the run folder"))
        return
    g = lambda sec, key: (cfg.get(sec) or {}).get(key)  # noqa: E731
    rows = [("backbone", g("model", "backbone")), ("weights", g("model", "weights")),
            ("image size", g("data", "image_size")), ("batch size", g("data", "batch_size")),
            ("data", g("data", "data") or (f"train {g('data', 'train')} / val {g('data', 'val')}"
                                           if g("data", "train") else ("demo" if g("data", "demo") else None))),
            ("validation split", g("data", "val_split")), ("class balance", g("data", "balance")),
            ("head", f"{g('model', 'pooling')} pooling, dense {g('model', 'dense_units')}, "
                     f"dropout {g('model', 'dropout')}")]
    for phase in ("transfer", "finetune"):
        p = cfg.get(phase) or {}
        if p:
            extra = f", blocks {p.get('blocks')}" if phase == "finetune" else ""
            rows.append((f"{phase} phase", f"{p.get('epochs')} epochs, {p.get('optimizer')} lr {p.get('lr')}, "
                                           f"{p.get('loss')}, schedule {p.get('schedule')}{extra}"))
    rows.append(("seed", g("run", "seed")))
    aug = cfg.get("augment") or {}
    active = [f"{k}={v}" for k, v in aug.items() if v not in (0, 0.0, "none", False, None)
              and not (k == "randaugment_factor" and not aug.get("randaugment"))]
    rows.append(("augmentation", ", ".join(active) or "none"))
    body = _table(["setting", "value"], rows)
    body += (f"<details><summary>full resolved config ({page.link(run.config)})</summary>"
             f"<pre>{_esc(run.config.read_text(encoding='utf-8'))}</pre></details>")
    page.add("config", "Configuration", body)


def _data_section(page: _Page, run: RunDir, assets: Path) -> None:
    report = _read_json(run.data_report) or {}
    counts = {}
    if report.get("train") or report.get("val"):
        counts = {k: report[k] for k in ("train", "val") if report.get(k)}
    elif run.split.is_file():
        for row in read_csv(run.split):
            counts.setdefault(row.get("subset", "all"), {}).setdefault(row["class"], 0)
            counts[row.get("subset", "all")][row["class"]] += 1
    if not counts and not report:
        page.add("data", "Data", _missing("no data_report.json or split.csv in the run folder"))
        return
    body = ""
    if counts:
        classes = run.read_classes() if run.classes.is_file() else sorted({c for v in counts.values() for c in v})
        counts = {k: {c: int(v.get(c, 0)) for c in classes} for k, v in counts.items()}
        totals = {k: sum(v.values()) for k, v in counts.items()}
        body += "<p>" + ", ".join(f"<b>{n}</b> {_esc(k)}" for k, n in totals.items()) + \
                f" images in <b>{len(classes)}</b> classes.</p>"
        from leafnet.explain.plots import plot_class_counts

        plot_class_counts(counts, assets / "class_counts.png", title="images per class")
        body += page.img(assets / "class_counts.png", "images per class (train and validation)")
    skipped = report.get("skipped") or []
    if report:
        body += (f"<p>files found {_esc(report.get('found', '-'))}, used {_esc(report.get('used', '-'))}, "
                 f"skipped {len(skipped)}; identical files across the split: "
                 f"{_esc(report.get('duplicates_across_split', 0))}.</p>")
    if skipped:
        body += "<h3>Skipped files</h3>" + _table(
            ["file", "reason"], ([s.get("path", ""), s.get("reason", "")] for s in skipped[:TABLE_ROWS]))
        if len(skipped) > TABLE_ROWS:
            body += f"<p>... and {len(skipped) - TABLE_ROWS} more ({page.link(run.data_report)}).</p>"
    page.add("data", "Data", body)


def _training_section(page: _Page, run: RunDir, assets: Path) -> None:
    history = read_csv(run.history) if run.history.is_file() else []
    curves = run.plots / "curves.png"
    if not history and not curves.is_file():
        page.add("training", "Training", _missing("no history.csv: the run has not trained an epoch yet"))
        return
    body = ""
    if not curves.is_file() and history:
        from leafnet.plots import plot_curves

        curves = assets / "curves.png"
        plot_curves(history, curves)
    body += page.img(curves, "loss, accuracy and learning rate per epoch (phase boundaries dashed)")
    lr_rows = [r for r in history if r.get("lr") not in (None, "")]
    if lr_rows:
        import numpy as np

        from leafnet.explain.plots import plot_lr

        plot_lr(np.array([float(r["epoch"]) for r in lr_rows]), np.array([float(r["lr"]) for r in lr_rows]),
                [r.get("phase", "") for r in lr_rows], assets / "lr.png")
        body += "<h3>Learning rate</h3>" + page.img(assets / "lr.png", "learning rate per epoch, by phase")
    if history:
        by_phase: dict[str, list[dict]] = {}
        for r in history:
            by_phase.setdefault(r.get("phase", ""), []).append(r)
        rows = []
        for phase, rs in by_phase.items():
            best = min(rs, key=lambda r: float(r["val_loss"]) if r.get("val_loss") not in (None, "") else float("inf"))
            rows.append([phase, len(rs), rs[0].get("lr"), rs[-1].get("lr"), best.get("epoch"),
                         _float(best.get("val_loss")), _float(best.get("val_accuracy"))])
        body += "<h3>Phases</h3>" + _table(["phase", "epochs", "first lr", "last lr", "best epoch", "val loss",
                                            "val accuracy"], rows, [False, True, True, True, True, True, True])
        body += f"<p>Every epoch: {page.link(run.history)}.</p>"
    page.add("training", "Training", body)


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _metrics_section(page: _Page, run: RunDir) -> None:
    metrics = _read_json(run.metrics) or {}
    evals = sorted((run.root / "eval").glob("*.json")) if (run.root / "eval").is_dir() else []
    ev = next((_read_json(p) for p in evals if p.stem == "val"), None) or (_read_json(evals[0]) if evals else None)
    if not metrics and not ev:
        page.add("metrics", "Metrics", _missing("no metrics.json (the run is not finished) and no "
                                                "evaluation (run: leafnet evaluate RUN)"))
        return
    body = ""
    kpis = [("val accuracy", metrics.get("val_accuracy")), ("val loss", metrics.get("val_loss")),
            ("mean per-class accuracy", metrics.get("mean_class_accuracy"))]
    if ev:
        k = ev.get("top_k")
        kpis += [(f"{ev.get('subset')} accuracy (evaluate{', TTA' if ev.get('tta') else ''})", ev.get("accuracy")),
                 (f"top-{k} accuracy", ev.get(f"top_{k}_accuracy"))]
    body += "".join(f'<span class="kpi"><b>{_esc(_fmt(v))}</b>{_esc(n)}</span>' for n, v in kpis if v is not None)
    if ev and ev.get("per_class"):
        body += f"<h3>Per class ({_esc(ev.get('subset'))}, {_esc(ev.get('images'))} images)</h3>"
        body += _table(["class", "precision", "recall", "F1", "support", "predicted"],
                       ([c, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support"), m.get("predicted")]
                        for c, m in ev["per_class"].items()), [False] + [True] * 5)
        if ev.get("most_confused"):
            body += "<h3>Most confused</h3>" + _table(
                ["true", "predicted", "count", "share of the true class"],
                ([p["true"], p["predicted"], p["count"], p["share_of_true"]] for p in ev["most_confused"]),
                [False, False, True, True])
    elif metrics.get("per_class"):
        body += "<h3>Per class (validation)</h3>" + _table(
            ["class", "accuracy (recall)", "images"],
            ([c, m.get("accuracy"), m.get("n")] for c, m in metrics["per_class"].items()), [False, True, True])
        body += _missing("precision, recall and F1 per class: run leafnet evaluate RUN")
    page.add("metrics", "Metrics", body)


def _confusion_section(page: _Page, run: RunDir) -> None:
    pics = [run.plots / "confusion_val.png"]
    if (run.root / "eval").is_dir():
        pics += sorted((run.root / "eval").glob("*_confusion*.png"))
    body = "".join(page.img(p, p.stem.replace("_", " ")) for p in pics if p.is_file())
    page.add("confusion", "Confusion matrices", body or _missing("no confusion matrix (run: leafnet evaluate RUN)"))


def _top_losses_section(page: _Page, run: RunDir) -> None:
    eval_dir = run.root / "eval"
    pics = sorted(eval_dir.glob("*_top_losses.png")) if eval_dir.is_dir() else []
    preds = sorted(eval_dir.glob("*_predictions.csv")) if eval_dir.is_dir() else []
    if not pics and not preds:
        page.add("top-losses", "Top losses", _missing("no evaluation yet (run: leafnet evaluate RUN)"))
        return
    body = "".join(page.img(p, p.stem.replace("_", " ")) for p in pics)
    for p in preds[:2]:
        rows = read_csv(p)[:10]
        body += f"<h3>Highest losses: {page.link(p)}</h3>" + _table(
            ["image", "true", "predicted", "confidence", "loss"],
            ([r["path"], r["true"], r["predicted"], _float(r["confidence"]), _float(r["loss"])] for r in rows),
            [False, False, False, True, True])
    page.add("top-losses", "Top losses", body)


def _sample_paths(run: RunDir, classes: list[str]) -> list[str]:
    """Up to ``SAMPLE_MAX`` validation images, ``SAMPLE_PER_CLASS`` per class, classes in turn."""
    if not run.split.is_file():
        return []
    by_class: dict[str, list[str]] = {c: [] for c in classes}
    for row in read_csv(run.split):
        if row.get("subset") == "val" and row.get("class") in by_class and os.path.exists(row["path"]):
            by_class[row["class"]].append(row["path"])
    picked: list[str] = []
    for i in range(SAMPLE_PER_CLASS):
        for c in classes:
            if i < len(by_class[c]) and len(picked) < SAMPLE_MAX:
                picked.append(by_class[c][i])
    return picked


def _explanations_section(page: _Page, run: RunDir, explanations: bool) -> None:
    body = ""
    sample_dir = run.root / "explain" / "report"
    if explanations:
        paths = _sample_paths(run, run.read_classes())
        if not run.model.is_file():
            body += _missing("no model.keras: the explanation sample needs a finished run")
        elif not paths:
            body += _missing("no validation images to explain (split.csv missing or its files moved)")
        else:
            from leafnet.explain.attributions import explain

            try:
                e = explain(run.root, paths, method="gradcam", out=sample_dir)
                body += page.img(e.files.get("grid") or e.files["panels"][0],
                                 f"Grad-CAM at {e.layer} on {len(paths)} validation images (explained: the "
                                 "predicted class; red titles are mistakes)")
            except LeafnetError as err:
                body += _missing(f"explanation sample failed: {err}")
    explain_dir = run.root / "explain"
    wanted = ("grid.png", "blocks.png", "inversions.png", "losses.png", "tuning.png")
    others = []
    if explain_dir.is_dir():
        for p in sorted(explain_dir.rglob("*.png")):
            if p.parent == sample_dir:
                continue
            if p.name in wanted or p.name.startswith(("filters_", "weights_")):
                others.append(p)
    if others:
        body += "<h3>Saved explanations</h3>" + "".join(page.img(p, page.rel(p)) for p in others[:16])
        if len(others) > 16:
            body += f"<p>... and {len(others) - 16} more pictures under {page.link(explain_dir, 'explain/')}.</p>"
    if not body:
        body = _missing("none yet (leafnet explain RUN --per-class 2; leafnet inversions RUN; leafnet filters RUN IMAGE)")
    page.add("explanations", "Explanations", body)


def _search_section(page: _Page, run: RunDir) -> None:
    trials = run.root / "trials.csv"
    pic = run.plots / "search.png"
    if not trials.is_file() and not pic.is_file():
        return
    body = page.img(pic, "hyperparameter search")
    if trials.is_file():
        rows = read_csv(trials)
        if rows:
            header = list(rows[0].keys())
            numeric = [all(_float(r.get(h)) is not None for r in rows if r.get(h) not in (None, "")) for h in header]
            body += f"<p>{len(rows)} trials ({page.link(trials)}).</p>" + _table(
                header, ([_float(r.get(h)) if n and r.get(h) not in (None, "") else r.get(h) for h, n in
                          zip(header, numeric)] for r in rows[:TABLE_ROWS]), numeric)
    page.add("search", "Hyperparameter search", body)


def _files_section(page: _Page, run: RunDir) -> None:
    names = ["config.yaml", "classes.json", "split.csv", "data_report.json", "history.csv", "metrics.json",
             "best.keras", "model.keras", "trials.csv"]
    items = [f"<li>{page.link(run.root / n)}</li>" for n in names if (run.root / n).is_file()]
    page.add("files", "Files", "<ul>" + "".join(items) + "</ul>" if items else _missing("no files"))


def write_report(run_dir: str | os.PathLike, explanations: bool = True, embed: bool = False) -> Path:
    """Write ``RUN/report.html`` and return its path.

    Args:
        run_dir: the run folder.
        explanations: draw a Grad-CAM sample on a few validation images (a few seconds on a CPU).
        embed: inline every picture (``data:`` URIs) instead of relative links.

    Example:
        >>> write_report("runs/demo")
        PosixPath('/.../runs/demo/report.html')
    """
    run = RunDir(run_dir)
    if not is_run_dir(run.root):
        raise LeafnetError(f"{run.root} is not a leafnet run folder (no config.yaml / classes.json)")
    cfg = _read_yaml(run.config)
    page = _Page(run.root, embed)
    assets = run.root / ASSETS

    def build() -> str:
        _config_section(page, run, cfg)
        _data_section(page, run, assets)
        _training_section(page, run, assets)
        _metrics_section(page, run)
        _confusion_section(page, run)
        _top_losses_section(page, run)
        _explanations_section(page, run, explanations)
        _search_section(page, run)
        _files_section(page, run)
        metrics = _read_json(run.metrics) or {}
        backbone = (cfg.get("model") or {}).get("backbone", "?")
        acc = metrics.get("val_accuracy")
        subtitle = (f"{backbone}, {len(run.read_classes())} classes"
                    + (f", val accuracy {acc:.4f}" if isinstance(acc, (int, float)) else ", not finished")
                    + f" — {run.root} — report of {time.strftime('%Y-%m-%d %H:%M')}")
        return page.render(f"leafnet run {run.root.name}", subtitle)

    text = io_guard(build, f"the report pictures in {assets}")
    path = run.root / "report.html"
    io_guard(lambda: write_text(path, text), str(path))
    return path
