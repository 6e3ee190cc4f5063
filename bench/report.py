"""The benchmark's table: one row per figure, printed and written to docs/performance.md."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "performance.md"


@dataclass(frozen=True)
class Row:
    section: str
    figure: str
    measured: str
    goal: str = ""
    met: bool | None = None  # None: informational, no goal
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: ""}[self.met]


def ratio(numerators: list[float], denominators: list[float]) -> tuple[float, float, float]:
    """Median ratio of paired runs and the spread (min, max) of the per-pair ratios."""
    pairs = [n / d for n, d in zip(numerators, denominators, strict=True) if d > 0]
    return statistics.median(pairs), min(pairs), max(pairs)


def fmt_ratio(values: tuple[float, float, float]) -> str:
    median, low, high = values
    return f"{median:.2f}x (spread {low:.2f}-{high:.2f})"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def table(rows: list[Row]) -> str:
    header = ("section", "figure", "measured", "goal", "")
    cells = [header, *((r.section, r.figure, r.measured, r.goal, r.verdict) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: list[Row], command: str, parameters: str, notes: list[str]) -> str:
    out = [
        "# Performance",
        "",
        "Written by the benchmark (`bench/`); do not edit by hand, run it again. Every time figure is a ratio",
        "measured side by side in the same run against bare SDK / psycopg calls doing the same requests, with",
        "the spread (min-max) of its repeats. Benchmarks are not tests: the test suite asserts no timing.",
        "",
        f"- command: `{command}`",
        f"- parameters: {parameters}",
        f"- machine: {machine()} (shared with other work while measuring: absolute times are noisy, ratios less so)",
        f"- commit: {_commit()}, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "| section | figure | measured | goal | |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [f"| {r.section} | {r.figure} | {r.measured} | {r.goal} | {r.verdict} |" for r in rows]
    row_notes = [f"- **{r.section} / {r.figure}**: {r.note}" for r in rows if r.note]
    if row_notes or notes:
        out += ["", "## Notes", "", *row_notes, *(f"- {n}" for n in notes)]
    return "\n".join(out) + "\n"


def write(rows: list[Row], command: str, parameters: str, notes: list[str]) -> None:
    REPORT.write_text(markdown(rows, command, parameters, notes))
