"""The local stack's env file (`.local/stack.env`): written here for `scripts/stack.py up`, and read here,
the one reader, by the scripts, the tests, the bench, the operator CLI's `--stack` and the conformance kit.

Where it sits: beside the service, never on its path (the Function App does not import it; no SDK here).
The file holds single-quoted `KEY='VALUE'` lines so `set -a; . .local/stack.env; set +a` works in bash;
the tiny reader here understands exactly that format (plus double-quoted or bare values).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_VAR = "ROTATION_STACK_ENV"
RELATIVE_PATH = Path(".local") / "stack.env"


class StackEnvMissingError(FileNotFoundError):
    """The env file does not exist, i.e. the local stack was never started."""


def default_path(search_from: Path | None = None) -> Path:
    """Where the env file is: $ROTATION_STACK_ENV; else `.local/stack.env` of this repository, or, given
    `search_from` (the conformance kit run from a plugin's own repository), of that directory or the
    nearest parent that has one."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    if search_from is None:
        return REPO_ROOT / RELATIVE_PATH
    candidates = [directory / RELATIVE_PATH for directory in (search_from, *search_from.parents)]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def parse_stack_env(text: str) -> dict[str, str]:
    """Parse env file text into a dict, ignoring blank lines and comments."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, raw = stripped.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"line {number} of the stack env file is not KEY=VALUE")
        values[key] = _unquote(raw)
    return values


def load_stack_env(path: Path | None = None) -> dict[str, str]:
    """Return the stack's variables; fail with a hint to start the stack if the file is missing."""
    target = path or default_path()
    if not target.is_file():
        raise StackEnvMissingError(
            f"stack env file {target} not found: start the local stack first with "
            "`.venv/bin/python scripts/stack.py up` (or set ROTATION_STACK_ENV)"
        )
    return parse_stack_env(target.read_text())


def format_stack_env(values: Mapping[str, str]) -> str:
    """Render values as single-quoted lines that bash can source and parse_stack_env can read."""
    lines = ["# Written by scripts/stack.py; regenerated on every `up`/`env`."]
    for key, value in values.items():
        if "'" in value or "\n" in value:
            raise ValueError(f"value of {key} cannot be single-quoted safely")
        lines.append(f"{key}='{value}'")
    return "\n".join(lines) + "\n"


def write_stack_env(path: Path, values: Mapping[str, str]) -> None:
    """Write the env file atomically with mode 0600 (it carries keys and the identity header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(format_stack_env(values))
    tmp.replace(path)
