"""The documented config as commented YAML: what ``leafnet config`` prints."""

from __future__ import annotations

import dataclasses

import yaml

from leafnet.config.schema import SECTIONS, Config


def describe(cfg: Config | None = None) -> str:
    """The documented default config as commented YAML (``leafnet config``)."""
    cfg = cfg or Config()
    lines = ["# leafnet configuration: every key, its default and what it does.",
             "# Precedence: defaults < --config FILE < flags and --set section.key=value", ""]
    for section in SECTIONS:
        obj = getattr(cfg, section)
        lines.append(f"{section}:  # {(type(obj).__doc__ or '').strip().splitlines()[0]}")
        for f in dataclasses.fields(obj):
            value = yaml.safe_dump(getattr(obj, f.name), default_flow_style=True).strip()
            value = value.removesuffix("\n...").removesuffix("...").strip()
            extra = f" [{'|'.join(map(str, f.metadata['choices']))}]" if f.metadata.get("choices") else ""
            lines.append(f"  {f.name}: {value}  # {f.metadata.get('help', '')}{extra}")
        lines.append("")
    return "\n".join(lines)
