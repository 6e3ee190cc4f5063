#!/usr/bin/env bash
# README command 1: install what is missing, start the local stack, rotate a real PostgreSQL password.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/python scripts/stack.py up
.venv/bin/python scripts/demo.py
