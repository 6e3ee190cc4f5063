"""Session fixtures for the infra/ static checks: checkov runs once on infra/, once on a weakened copy,
and pycep-parser parses the real templates and every weakened copy in a single subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.checks.rules import Parsed

from .mutations import MUTATIONS, Mutation

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


def checkov_bin() -> Path:
    return Path(os.environ.get("CHECKOV_BIN", REPO / ".cache" / "venv-checkov" / "bin" / "checkov"))


def checkov_python() -> Path:
    # pycep-parser is installed beside checkov, never in the main venv (conflicting pins).
    return checkov_bin().parent / "python"


def _require_checkov() -> None:
    if not checkov_bin().exists():
        pytest.fail(
            f"checkov not found at {checkov_bin()}: python3 -m venv .cache/venv-checkov && "
            ".cache/venv-checkov/bin/pip install -r requirements-checkov.txt (or set CHECKOV_BIN)"
        )


@dataclass(frozen=True)
class CheckovRun:
    report: dict[str, Any]
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.report["summary"])

    def ids(self, kind: str) -> list[str]:
        return [c["check_id"] for c in self.report["results"][kind]]


def run_checkov(directory: Path) -> CheckovRun:
    _require_checkov()
    proc = subprocess.run(
        [str(checkov_bin()), "-d", str(directory), "--framework", "bicep", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(proc.stdout)
    # With no resource at all checkov prints a bare summary; the templates always have resources.
    assert isinstance(report, dict) and "results" in report, proc.stdout[:500]
    return CheckovRun(report, proc.stderr)


@pytest.fixture(scope="session")
def checkov_infra() -> CheckovRun:
    return run_checkov(INFRA)


@dataclass(frozen=True)
class Tree:
    parsed: Parsed
    texts: dict[str, str]


def _apply(root: Path, mutation: Mutation) -> None:
    path = root / mutation.file
    text = path.read_text(encoding="utf-8")
    # The weakening must really change the template, or the test would prove nothing.
    assert text.count(mutation.old) >= 1, f"{mutation.name}: {mutation.old!r} not in {mutation.file}"
    path.write_text(text.replace(mutation.old, mutation.new, 1), encoding="utf-8")


@pytest.fixture(scope="session")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tree]:
    """'original' plus one weakened copy of infra/ per mutation, all parsed in one subprocess."""
    _require_checkov()
    base = tmp_path_factory.mktemp("weakened")
    roots = {"original": INFRA}
    for mutation in MUTATIONS:
        root = base / mutation.name
        shutil.copytree(INFRA, root)
        _apply(root, mutation)
        roots[mutation.name] = root
    proc = subprocess.run(
        [str(checkov_python()), "-m", "infra.checks.parse", *(str(r) for r in roots.values())],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=REPO,
    )
    parsed_by_dir = json.loads(proc.stdout)
    result = {}
    for name, root in roots.items():
        parsed = parsed_by_dir[str(root)]
        texts = {rel: (root / rel).read_text(encoding="utf-8") for rel in parsed}
        result[name] = Tree(parsed, texts)
    return result
