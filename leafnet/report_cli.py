"""Sub-command ``report`` (registered by leafnet.cli): one HTML page of a run.

Parses, calls :func:`leafnet.report.write_report` and prints where it wrote. No TensorFlow at
import time.
"""

from __future__ import annotations

from leafnet import console
from leafnet.cli_help import examples


def register(sub) -> dict:
    """Add ``report`` to ``sub`` (argparse sub-parsers); return ``{name: handler}``."""
    p = sub.add_parser("report", help="one HTML page of a run: config, data, curves, metrics, explanations",
                       description="Write RUN/report.html: readable offline, pictures beside it in RUN/.",
                       epilog=examples("leafnet report runs/demo", "leafnet report runs/demo --embed"))
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--no-explanations", action="store_true", help="skip the Grad-CAM sample (a few seconds)")
    p.add_argument("--embed", action="store_true", help="embed every picture in the HTML (one file to send)")
    return {"report": cmd_report}


def cmd_report(args) -> int:
    from leafnet.report import write_report

    path = write_report(args.run, explanations=not args.no_explanations, embed=args.embed)
    console.info(f"report: {path}")
    return 0
