"""The Function App's cold-start path stays free of the operator CLI and its libraries (click and rich are
dev/CLI dependencies, not in requirements.txt, so importing them would break a deployment)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_function_app_imports_no_cli_module() -> None:
    probe = (
        "import sys, function_app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich') "
        "or m.startswith(('secret_rotation.cli', 'secret_rotation.operations'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_cli_libraries_are_not_runtime_requirements() -> None:
    runtime = (REPO / "requirements.txt").read_text().lower()
    assert not any(f"\n{name}==" in f"\n{runtime}" for name in ("click", "rich"))
