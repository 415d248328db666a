"""``leafnet report``: one HTML page per run, readable offline.

``RUN/report.html`` gathers what the run folder holds: the config, the data (class counts,
skipped files), the training curves (the epochs whose weights each phase kept marked), the
metrics of every evaluation under ``eval/`` side by side (val, test, TTA...), one row-normalised
confusion matrix (the others linked), top losses, a sample of Grad-CAM explanations, filter
pictures, search results and links to every file, ``eval/`` and ``export/`` included. Each
picture appears once. Pictures are referenced by paths relative to the run folder (the page
travels with the folder), or with ``embed=True`` inlined as ``data:`` URIs (one file to send).
Pictures the report draws itself go to ``RUN/report_files/``; the explanation sample to
``RUN/explain/report/``. Sections whose files are missing say which command makes them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from leafnet.data.verify import check_rows
from leafnet.errors import LeafnetError
from leafnet.evaluate import saved_evaluations
from leafnet.history import restored_epochs
from leafnet.htmlpage import Page, esc, fmt, missing, table
from leafnet.plots import COUNTS_UP_TO, MATRIX_UP_TO, RESTORED
from leafnet.runs import Run, RunDir, io_guard, is_run_dir, read_csv, write_text

ASSETS = "report_files"
SAMPLE_PER_CLASS = 2
SAMPLE_MAX = 8
TABLE_ROWS = 50


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- sections


def _config_section(page: Page, run: RunDir, cfg: dict) -> None:
    if not cfg:
        page.add("config", "Configuration", missing("no config.yaml in the run folder"))
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
    body = table(["setting", "value"], rows)
    body += (f"<details><summary>full resolved config ({page.link(run.config)})</summary>"
             f"<pre>{esc(run.config.read_text(encoding='utf-8'))}</pre></details>")
    page.add("config", "Configuration", body)


def _data_section(page: Page, run: RunDir, assets: Path) -> None:
    report = _read_json(run.data_report) or {}
    counts = {}
    if report.get("train") or report.get("val"):
        counts = {k: report[k] for k in ("train", "val") if report.get(k)}
    elif run.split.is_file():
        for row in Run(run.root).split_rows():
            counts.setdefault(row.get("subset", "all"), {}).setdefault(row["class"], 0)
            counts[row.get("subset", "all")][row["class"]] += 1
    if not counts and not report:
        page.add("data", "Data", missing("no data_report.json or split.csv in the run folder"))
        return
    body = ""
    if counts:
        classes = run.read_classes() if run.classes.is_file() else sorted({c for v in counts.values() for c in v})
        counts = {k: {c: int(v.get(c, 0)) for c in classes} for k, v in counts.items()}
        totals = {k: sum(v.values()) for k, v in counts.items()}
        body += "<p>" + ", ".join(f"<b>{n}</b> {esc(k)}" for k, n in totals.items()) + \
                f" images in <b>{len(classes)}</b> classes.</p>"
        from leafnet.plots import plot_class_counts

        plot_class_counts(counts, assets / "class_counts.png", title="images per class")
        body += page.img(assets / "class_counts.png", "images per class (train and validation)")
    skipped = report.get("skipped") or []
    if report:
        body += (f"<p>files found {esc(report.get('found', '-'))}, used {esc(report.get('used', '-'))}, "
                 f"skipped {len(skipped)}; identical files across the split: "
                 f"{esc(report.get('duplicates_across_split', 0))}.</p>")
    if skipped:
        body += "<h3>Skipped files</h3>" + table(
            ["file", "reason"], ([s.get("path", ""), s.get("reason", "")] for s in skipped[:TABLE_ROWS]))
        if len(skipped) > TABLE_ROWS:
            body += f"<p>... and {len(skipped) - TABLE_ROWS} more ({page.link(run.data_report)}).</p>"
    page.add("data", "Data", body)


def _training_section(page: Page, run: RunDir, cfg: dict, assets: Path) -> None:
    history = read_csv(run.history) if run.history.is_file() else []
    curves = run.plots / "curves.png"
    if not history and not curves.is_file():
        page.add("training", "Training", missing("no history.csv: the run has not trained an epoch yet"))
        return
    monitors = {phase: sec["monitor"] for phase, sec in cfg.items() if isinstance(sec, dict) and sec.get("monitor")}
    state = _read_json(run.backup / "state.json") or {}
    restored = restored_epochs(history, monitors, last_phase_done=run.metrics.is_file() or bool(state.get("phase_done")))
    if not curves.is_file() and history:
        from leafnet.plots import plot_curves

        curves = assets / "curves.png"
        plot_curves(history, curves, restored=restored)
    body = page.img(curves, "loss, accuracy and learning rate per epoch; dashed: phase boundaries; dotted red: "
                            f"{RESTORED}, the epoch each phase ended on (its best by the monitored metric)")
    if history:
        by_phase: dict[str, list[dict]] = {}
        for r in history:
            by_phase.setdefault(r.get("phase", ""), []).append(r)
        rows = []
        for phase, rs in by_phase.items():
            kept = next((r for r in rs if _float(r.get("epoch")) == restored.get(phase)), {})
            rows.append([phase, len(rs), _float(rs[0].get("lr")), _float(rs[-1].get("lr")), monitors.get(phase),
                         restored.get(phase, "-"), _float(kept.get("val_loss")), _float(kept.get("val_accuracy"))])
        body += "<h3>Phases</h3>" + table(["phase", "epochs", "first lr", "last lr", "monitor", RESTORED + " (epoch)",
                                            "val loss", "val accuracy"], rows, [False] + [True] * 3 + [False] + [True] * 3)
        body += f"<p>Every epoch: {page.link(run.history)}.</p>"
    page.add("training", "Training", body)


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _metrics_section(page: Page, run: RunDir, evals: list[dict]) -> None:
    metrics = _read_json(run.metrics) or {}
    if not metrics and not evals:
        page.add("metrics", "Metrics", missing("no metrics.json (the run is not finished) and no "
                                                "evaluation (run: leafnet evaluate RUN)"))
        return
    kpis = [("val accuracy", metrics.get("val_accuracy")), ("val loss", metrics.get("val_loss")),
            ("mean per-class accuracy", metrics.get("mean_class_accuracy"))]
    body = "".join(f'<span class="kpi"><b>{esc(fmt(v))}</b>{esc(n)}</span>' for n, v in kpis if v is not None)
    if evals:
        body += "<h3>Evaluations (leafnet evaluate)</h3>" + table(
            ["evaluation", "images", "accuracy", "mean per-class accuracy", "top-k", "top-k accuracy", "loss"],
            ([e["label"], e.get("images"), e.get("accuracy"), e.get("mean_class_accuracy"), e.get("top_k"),
              e.get("top_k_accuracy"), e.get("loss")] for e in evals), [False] + [True] * 6)
        body += "<p>Reports: " + ", ".join(page.link(e["paths"]["report"]) for e in evals) + ".</p>"
    ev = evals[0] if evals else None
    if ev and ev.get("per_class"):
        body += f"<h3>Per class ({esc(ev['label'])}, {esc(ev.get('images'))} images)</h3>"
        body += table(["class", "precision", "recall", "F1", "support", "predicted"],
                       ([c, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support"), m.get("predicted")]
                        for c, m in ev["per_class"].items()), [False] + [True] * 5)
        if ev.get("most_confused"):
            body += f"<h3>Most confused ({esc(ev['label'])})</h3>" + table(
                ["true", "predicted", "count", "share of the true class"],
                ([p["true"], p["predicted"], p["count"], p["share_of_true"]] for p in ev["most_confused"]),
                [False, False, True, True])
    elif metrics.get("per_class"):
        body += "<h3>Per class (validation)</h3>" + table(
            ["class", "accuracy (recall)", "images"],
            ([c, m.get("accuracy"), m.get("n")] for c, m in metrics["per_class"].items()), [False, True, True])
        body += missing("precision, recall and F1 per class: run leafnet evaluate RUN")
    page.add("metrics", "Metrics", body)


def _confusion_section(page: Page, run: RunDir, evals: list[dict]) -> None:
    """One matrix on the page, row-normalised (the first evaluation's, else fit's); the others linked."""
    fit_png = run.plots / "confusion_val.png"
    ev = evals[0] if evals else None
    shown = ev["paths"].get("confusion_normalized") if ev else None
    n_classes = len(ev["classes"]) if ev else len(run.read_classes())
    how = ("row-normalised: each row (a true class) sums to 1" +
           ("; counts in brackets" if n_classes <= COUNTS_UP_TO else "") +
           (f"; the classes of the largest errors only, of {n_classes}" if n_classes > MATRIX_UP_TO else ""))
    if shown:
        body = page.img(shown, f"{ev['label']}, {ev.get('images')} images, {how}")
        table_csv = ev["paths"].get("confusion_csv")
    elif fit_png.is_file():
        shown, body = fit_png, page.img(fit_png, f"validation at the end of fit, {how}")
        table_csv = fit_png.with_suffix(".csv")
    else:
        page.add("confusion", "Confusion matrix", missing("no confusion matrix (run: leafnet evaluate RUN)"))
        return
    if table_csv is not None and Path(table_csv).is_file():
        body += f"<p>Every class, in counts: {page.link(table_csv)}.</p>"
    others = [(f"{e['label']}, {name}", e["paths"][kind]) for e in evals
              for kind, name in (("confusion_normalized", "row-normalised"), ("confusion", "counts"))
              if kind in e["paths"] and e["paths"][kind] != shown]
    if fit_png.is_file() and fit_png != shown:
        others.append(("validation at the end of fit, row-normalised", fit_png))
    if others:
        body += "<p>Other matrices: " + ", ".join(page.link(p, text) for text, p in others) + ".</p>"
    page.add("confusion", "Confusion matrix", body)


def _top_losses_section(page: Page, evals: list[dict]) -> None:
    """The first evaluation's highest losses (grid and table); the other evaluations' linked."""
    if not evals:
        page.add("top-losses", "Top losses", missing("no evaluation yet (run: leafnet evaluate RUN)"))
        return
    ev = evals[0]
    body = ""
    if "top_losses" in ev["paths"]:
        body += page.img(ev["paths"]["top_losses"], f"{ev['label']}: the {min(16, ev.get('images') or 0)} "
                                                    "highest-loss images (red titles: wrong predictions)")
    if "predictions" in ev["paths"]:
        rows = read_csv(ev["paths"]["predictions"])[:10]
        body += f"<h3>Highest losses ({esc(ev['label'])}): {page.link(ev['paths']['predictions'])}</h3>" + table(
            ["image", "true", "predicted", "confidence", "loss"],
            ([r["path"], r["true"], r["predicted"], _float(r["confidence"]), _float(r["loss"])] for r in rows),
            [False, False, False, True, True])
    others = [page.link(e["paths"][k], f"{e['label']}, {text}") for e in evals[1:]
              for k, text in (("top_losses", "grid"), ("predictions", "predictions CSV")) if k in e["paths"]]
    if others:
        body += "<p>Other evaluations: " + ", ".join(others) + ".</p>"
    page.add("top-losses", "Top losses", body)


def _sample_paths(run: RunDir, classes: list[str]) -> list[str]:
    """Up to ``SAMPLE_MAX`` validation images, ``SAMPLE_PER_CLASS`` per class, classes in turn."""
    if not run.split.is_file():
        return []
    by_class: dict[str, list[str]] = {c: [] for c in classes}
    for row in Run(run.root).split_rows():
        if row.get("subset") == "val" and row.get("class") in by_class and os.path.exists(row["path"]):
            by_class[row["class"]].append(row["path"])
    picked: list[str] = []
    for i in range(SAMPLE_PER_CLASS):
        for c in classes:
            if i < len(by_class[c]) and len(picked) < SAMPLE_MAX:
                picked.append(by_class[c][i])
    return picked


def _explanations_section(page: Page, run: RunDir, explanations: bool) -> None:
    body = ""
    sample_dir = run.root / "explain" / "report"
    if explanations:
        try:
            check_rows(run)
            paths = _sample_paths(run, run.read_classes())
        except LeafnetError as e:
            paths, refused = [], str(e)
        else:
            refused = None
        if refused:
            body += missing(refused)
        elif not run.model.is_file():
            body += missing("no model.keras: the explanation sample needs a finished run")
        elif not paths:
            body += missing("no validation images to explain (split.csv missing or its files moved)")
        else:
            from leafnet.explain.attributions import explain

            try:
                e = explain(run.root, paths, method="gradcam", out=sample_dir)
                body += page.img(e.files.get("grid") or e.files["panels"][0],
                                 f"Grad-CAM at {e.layer} on {len(paths)} validation images (explained: the "
                                 "predicted class; red titles are mistakes)")
            except LeafnetError as err:
                body += missing(f"explanation sample failed: {err}")
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
        body = missing("none yet (leafnet explain RUN --per-class 2; leafnet inversions RUN; leafnet filters RUN IMAGE)")
    page.add("explanations", "Explanations", body)


def _search_section(page: Page, run: RunDir) -> None:
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
            body += f"<p>{len(rows)} trials ({page.link(trials)}).</p>" + table(
                header, ([_float(r.get(h)) if n and r.get(h) not in (None, "") else r.get(h) for h, n in
                          zip(header, numeric)] for r in rows[:TABLE_ROWS]), numeric)
    page.add("search", "Hyperparameter search", body)


def _files_section(page: Page, run: RunDir) -> None:
    """The run's own files, then every file under ``eval/`` and ``export/``, one line per folder."""
    names = ["config.yaml", "classes.json", "split.csv", "data_report.json", "history.csv", "metrics.json",
             "best.keras", "model.keras", "trials.csv"]
    items = [f"<li>{page.link(run.root / n)}</li>" for n in names if (run.root / n).is_file()]
    for folder in ("eval", "export"):
        by_dir: dict[Path, list[Path]] = {}
        for p in sorted((run.root / folder).rglob("*")) if (run.root / folder).is_dir() else []:
            if p.is_file() and not p.name.startswith("."):
                by_dir.setdefault(p.parent, []).append(p)
        items += [f"<li>{esc(page.rel(d))}/: " + ", ".join(page.link(p, p.name) for p in ps[:TABLE_ROWS])
                  + (f" ... and {len(ps) - TABLE_ROWS} more" if len(ps) > TABLE_ROWS else "") + "</li>"
                  for d, ps in by_dir.items()]
    page.add("files", "Files", "<ul>" + "".join(items) + "</ul>" if items else missing("no files"))


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
    cfg = Run(run.root).config
    page = Page(run.root, embed)
    assets = run.root / ASSETS

    def build() -> str:
        _config_section(page, run, cfg)
        _data_section(page, run, assets)
        evals = saved_evaluations(run.root)
        _training_section(page, run, cfg, assets)
        _metrics_section(page, run, evals)
        _confusion_section(page, run, evals)
        _top_losses_section(page, evals)
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
