"""Figures the reliability tests measure, printed at the end of the run (and kept in .local/reports)."""

from __future__ import annotations

import json
from pathlib import Path

FIGURES: dict[str, object] = {}
REPORT = Path(__file__).resolve().parents[2] / ".local" / "reports" / "figures.json"


def record_figure(name: str, value: object) -> None:
    FIGURES[name] = value


def write_report() -> None:
    if FIGURES:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(FIGURES, indent=2, default=str))
