"""CLI: `.cache/venv-checkov/bin/python -m infra.checks [DIR]` parses and checks DIR (default infra)."""

from __future__ import annotations

import sys
from pathlib import Path

from infra.checks.parse import parse_tree
from infra.checks.rules import Finding, check_tree


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path("infra")
    parsed = parse_tree(root)
    texts = {rel: (root / rel).read_text(encoding="utf-8") for rel in parsed}
    findings: list[Finding] = check_tree(parsed, texts)
    for finding in findings:
        print(f"{finding.rule} {finding.file}: {finding.message}")
    print(f"{len(findings)} finding(s) in {len(parsed)} file(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
