"""A small HTML page that reads offline: sections, tables, and pictures linked relative to a
folder (the page travels with it) or inlined as ``data:`` URIs (one file to send)."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

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


def esc(value: Any) -> str:
    """``value`` as HTML text (``None``: empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any) -> str:
    """A table cell's text: floats to 4 decimals (3 significant digits when tiny), ``None`` as ``-``."""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return "-" if value is None else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    """An HTML table; ``numeric`` columns are right-aligned."""
    numeric = numeric or [False] * len(header)
    out = ["<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td class=\"n\">{esc(fmt(v))}</td>" if n else f"<td>{esc(fmt(v))}</td>"
                                    for v, n in zip(row, numeric)) + "</tr>")
    return "\n".join(out) + "</table>"


def missing(text: str) -> str:
    """A note saying what is missing and which command makes it."""
    return f'<p class="missing">{esc(text)}</p>'


class Page:
    """Collects sections; turns files under ``root`` into ``<img>`` / links (relative or embedded);
    a picture already on the page is not shown again."""

    def __init__(self, root: Path, embed: bool):
        self.root, self.embed = root, embed
        self.sections: list[tuple[str, str, str]] = []
        self.images: list[str] = []

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(Path(path).resolve(), self.root)).as_posix()

    def img(self, path: Path, caption: str = "") -> str:
        path = Path(path)
        if not path.is_file() or self.rel(path) in self.images:   # each picture once
            return ""
        if self.embed:
            src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        else:
            src = self.rel(path)
        self.images.append(self.rel(path))
        cap = f"<figcaption>{esc(caption or self.rel(path))}</figcaption>"
        return f'<figure><img src="{esc(src)}" alt="{esc(caption or path.name)}" loading="lazy">{cap}</figure>'

    def link(self, path: Path, text: str | None = None) -> str:
        return f'<a href="{esc(self.rel(path))}">{esc(text or self.rel(path))}</a>'

    def add(self, anchor: str, title: str, body: str) -> None:
        self.sections.append((anchor, title, body))

    def render(self, title: str, subtitle: str) -> str:
        nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in self.sections)
        body = "\n".join(f'<section id="{a}"><h2>{esc(t)}</h2>\n{b}\n</section>' for a, t, b in self.sections)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>"
                f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{nav}</nav>"
                f"<main>\n{body}\n</main></body></html>\n")
