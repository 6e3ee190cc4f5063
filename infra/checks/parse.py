"""Parse every .bicep file under the given directories with pycep-parser and print JSON.

Run with the checkov venv's python (`.cache/venv-checkov/bin/python -m infra.checks.parse DIR...`).
Output: {dir: {relative path: {"ok": bicep json} | {"error": message}}}. A file that does not
parse is reported, never skipped: checkov itself exits 0 on files it cannot parse.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


def parse_tree(root: Path) -> dict[str, dict[str, Any]]:
    # pycep-parser has no type information; it lives only in the checkov venv.
    pycep: Any = importlib.import_module("pycep")
    parser = pycep.BicepParser()
    result: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.bicep")):
        rel = path.relative_to(root).as_posix()
        try:
            result[rel] = {"ok": parser.parse(text=path.read_text(encoding="utf-8"))}
        except Exception as exc:  # any parser failure is a finding, whatever its type
            result[rel] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    return result


def main(argv: list[str]) -> int:
    out = {d: parse_tree(Path(d)) for d in argv}
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
