"""The files `azd deploy` would upload to the Function App, computed as azd computes them.

azd zips the service's project directory (azure.yaml `project: .`), skipping what `.funcignore`
excludes: a gitignore matcher, applied while walking the tree, so an excluded directory is never entered
(azure-dev cli/azd/pkg/project/project_utils.go, createDeployableZip; pkg/rzip). It always leaves out
`.azure/`, the ignore file itself and `local.settings.json`. Here `pathspec`'s gitignore semantics stand
in for azd's matcher. Used by tests/infra/test_package.py; runs in the main venv.
"""

from __future__ import annotations

import os
from pathlib import Path

import pathspec

IGNORE_FILE = ".funcignore"
#: Left out by azd, at any depth, whatever the ignore file says (createDeployableZip).
ALWAYS_LEFT_OUT_DIRS = frozenset({".azure"})
ALWAYS_LEFT_OUT_FILES = frozenset({IGNORE_FILE, "local.settings.json"})


def package_files(root: Path) -> list[str]:
    """Paths (relative, '/'-separated) of every file the deployment package of `root` would contain."""
    ignore = root / IGNORE_FILE
    lines = ignore.read_text(encoding="utf-8-sig").splitlines() if ignore.exists() else []
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    found: list[str] = []
    for current, dirs, files in os.walk(root, followlinks=True):
        rel_dir = Path(current).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        # Prune in place: like azd, never enter an excluded directory.
        dirs[:] = sorted(d for d in dirs if d not in ALWAYS_LEFT_OUT_DIRS and not spec.match_file(f"{prefix}{d}/"))
        found += [
            f"{prefix}{name}"
            for name in sorted(files)
            if name not in ALWAYS_LEFT_OUT_FILES and not spec.match_file(f"{prefix}{name}")
        ]
    return found
