"""The CLI's human output shows dynamic text as it is: reasons and tag values may hold square brackets,
which rich would otherwise take for markup and drop."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from secret_rotation.cli import render
from secret_rotation.operations.plan import Plan, PlanEntry
from secret_rotation.outcomes import Outcome, Status


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(render, "out", Console(file=buffer, width=300, color_system=None))
    return buffer


def test_outcome_reasons_keep_their_brackets(screen: io.StringIO) -> None:
    render.outcome(Outcome(Status.FAILED, "c1", secret_name="db", step="apply", reason="[step] tags ['a'] [bold]x"))
    assert "[step] tags ['a'] [bold]x" in screen.getvalue()


def test_plan_rows_keep_their_brackets(screen: io.StringIO) -> None:
    entry = PlanEntry(
        "db", "[odd]", None, datetime(2030, 1, 1, tzinfo=UTC), None, "never", ("unknown rotator '[odd]'",)
    )
    render.plan(Plan("https://v", (entry,)))
    text = screen.getvalue()
    assert "unknown rotator '[odd]'" in text and "│ [odd]" in text
