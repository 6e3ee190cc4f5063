#!/usr/bin/env bash
# README command 2 (and what CI runs): install what is missing, start the local stack, lint, type-check
# and run the whole test suite against it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/python scripts/stack.py up
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/python -m pytest "$@"
