"""The deployment package (`.funcignore`): only the app's runtime code reaches Azure, never the local
stack's keys and data, caches, virtual environments, version control, tests, docs, examples or bench."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.checks.package import IGNORE_FILE, package_files

from .conftest import REPO

#: Top-level entries the Function App needs at runtime; anything else in the package is a leak.
SHIPPED = frozenset({"function_app.py", "host.json", "requirements.txt", "secret_rotation", "rotators"})
#: Paths that must never be uploaded, at the top level or (the caches) anywhere.
NEVER_TOP = (".local", ".cache", ".venv", ".git", "tests", "docs", "examples", "bench")
NEVER_ANYWHERE = ("__pycache__", ".pyc")


def leaks(files: list[str]) -> list[str]:
    return [
        f
        for f in files
        if f.split("/")[0] in NEVER_TOP
        or f.split("/")[0] not in SHIPPED
        or any(part.endswith(bad) for part in f.split("/") for bad in NEVER_ANYWHERE)
    ]


def test_package_holds_the_runtime_code_and_nothing_else() -> None:
    files = package_files(REPO)
    assert leaks(files) == []
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(files)
    assert "secret_rotation/engine.py" in files
    assert any(f.startswith("rotators/") for f in files)


def _project_copy(root: Path, ignore_text: str) -> Path:
    """A small project tree holding what the real one holds while the local stack runs."""
    for rel in (
        "function_app.py",
        "host.json",
        "requirements.txt",
        "secret_rotation/engine.py",
        "secret_rotation/__pycache__/engine.cpython-311.pyc",
        "rotators/postgres_role.py",
        ".local/ca/ca.key",
        ".local/pg/data/PG_VERSION",
        ".cache/venv-checkov/pyvenv.cfg",
        ".venv/pyvenv.cfg",
        ".git",
        "tests/unit/test_engine.py",
        "docs/protocol.md",
        "examples/redis_acl_user/rotator.py",
        "bench/run.py",
        ".azure/prod/.env",
        "local.settings.json",
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    (root / IGNORE_FILE).write_text(ignore_text, encoding="utf-8")
    return root


def test_real_ignore_file_keeps_every_leak_out_of_a_full_tree(tmp_path: Path) -> None:
    root = _project_copy(tmp_path / "project", (REPO / IGNORE_FILE).read_text(encoding="utf-8"))
    files = package_files(root)
    assert leaks(files) == []
    assert sorted(files) == [
        "function_app.py",
        "host.json",
        "requirements.txt",
        "rotators/postgres_role.py",
        "secret_rotation/engine.py",
    ]


def test_check_fails_on_a_copy_that_would_ship_local_state(tmp_path: Path) -> None:
    real = (REPO / IGNORE_FILE).read_text(encoding="utf-8")
    weakened = "\n".join(line for line in real.splitlines() if line.strip() != ".local")
    assert weakened != real
    root = _project_copy(tmp_path / "project", weakened)
    assert leaks(package_files(root)) == [".local/ca/ca.key", ".local/pg/data/PG_VERSION"]


def test_without_an_ignore_file_everything_ships(tmp_path: Path) -> None:
    # What azd uploaded before .funcignore existed (its own Python defaults aside): the check sees it.
    root = _project_copy(tmp_path / "project", "")
    (root / IGNORE_FILE).unlink()
    shutil.rmtree(root / ".venv")
    found = set(leaks(package_files(root)))
    assert {".local/ca/ca.key", "tests/unit/test_engine.py", "docs/protocol.md", "bench/run.py", ".git"} <= found
