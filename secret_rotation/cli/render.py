"""How the CLI shows results: rich tables for people (colour only on a terminal), JSON for machines.

Everything rendered here is properties, tags, versions and outcomes; no secret value ever reaches it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from enum import Enum
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from secret_rotation.on_demand import Answer
from secret_rotation.operations.plan import Plan
from secret_rotation.operations.progress import STEP_TEXT
from secret_rotation.operations.status import SecretStatus
from secret_rotation.outcomes import Outcome, Status

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Outcome):
        return value.fields()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def as_json(value: Any, **extra: Any) -> None:
    document = _plain(value)
    if isinstance(document, dict):
        document.update(_plain(extra))
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


def plan(result: Plan) -> None:
    table = Table(title=escape(f"Rotation plan for {result.vault_url}"), title_justify="left")
    for column in ("secret", "rotator", "pattern", "expires (UTC)", "rotates", "problems"):
        table.add_column(column, overflow="fold")
    for entry in result.entries:
        problems = "\n".join(f"[red]✗[/red] {escape(problem)}" for problem in entry.problems) or "[green]✓ none[/green]"
        table.add_row(
            escape(entry.name),
            escape(entry.rotator or "-"),
            entry.pattern or "-",
            _when(entry.expires_on),
            entry.when,
            problems,
        )
    out.print(table)
    for problem in result.plugin_problems:
        out.print(f"[red]✗[/red] {escape(problem)}", soft_wrap=True)
    if result.plugins_not_allowed:
        names = ", ".join(result.plugins_not_allowed)
        out.print(f"installed but not in ROTATION_ALLOWED_PLUGINS: {escape(names)}", soft_wrap=True)
    bad = sum(1 for entry in result.entries if not entry.ok)
    out.print(
        f"{len(result.entries)} secret(s) with rotation tags, {bad} misconfigured; "
        f"{len(result.untagged)} without rotation tags (not managed)"
    )


def progress(name: str, step: str, version: str) -> None:
    text = escape(f"{name}: {step} ({version[:12]}): {STEP_TEXT.get(step, step)}")
    line = f"[cyan]•[/cyan] {text}"
    err.print(line, soft_wrap=True)  # one line per step, whatever the width: scripts may read it


_STYLE = {Status.ROTATED: "green", Status.FAILED: "red", Status.DEFERRED: "yellow", Status.SKIPPED: "yellow"}


def outcome(result: Outcome) -> None:
    style = _STYLE.get(result.status, "white")
    text = result.secret_name or ""
    if result.from_version or result.to_version:
        text += f" {result.from_version or '-'} → {result.to_version or '-'}"
    if result.step:
        text += f" at step {result.step}"
    out.print(f"[{style}]{result.status.value}[/{style}] {escape(text)}", soft_wrap=True)
    if result.reason:
        out.print(f"  {escape(result.reason)}", soft_wrap=True)
    out.print(f"  correlation id {result.correlation_id}", style="dim")


def answer(result: Answer) -> None:
    style = "green" if result.status == 202 else "red"
    body = result.body
    out.print(f"[{style}]{result.status}[/{style}] {escape(str(body.get('error') or 'enqueued'))}", soft_wrap=True)
    out.print(f"  correlation id {body.get('correlationId')}", style="dim")


def status(result: SecretStatus) -> None:
    if not result.exists:
        out.print(f"[red]{escape(result.name)} does not exist in {escape(result.vault_url)}[/red]")
        return
    table = Table(title=escape(f"{result.name} in {result.vault_url}"), title_justify="left")
    for column in ("version", "created (UTC)", "expires (UTC)", "enabled", "credential", "written by", "from"):
        table.add_column(column, overflow="fold")
    for row in result.history:
        table.add_row(
            row.version,
            _when(row.created_on),
            _when(row.expires_on),
            "yes" if row.enabled else "[dim]no[/dim]",
            escape(row.credential_id or "-"),
            escape(row.origin + (f" {row.rotation_id[:12]}" if row.rotation_id else "")),
            (row.rotated_from or "-")[:12],
        )
    out.print(table)
    if result.pending:
        pending = result.pending
        style = "red" if pending.stuck else "yellow"
        detail = f"rotation {pending.rotation_id} at step {pending.step} since {_when(pending.since)}"
        out.print(f"[{style}]pending[/{style}] {escape(detail)} (base version {pending.base_version})", soft_wrap=True)
    else:
        out.print("no rotation pending")
    out.print(f"last outcome: {escape(result.last_outcome)}", soft_wrap=True)
