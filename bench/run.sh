#!/usr/bin/env bash
# The benchmark command of the README: sets up and starts the local stack like the test command, then runs
# every benchmark, prints the table and writes docs/performance.md. Options: see `bench/run.sh --help`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
bash scripts/setup.sh
.venv/bin/python scripts/stack.py up
exec .venv/bin/python -m bench "$@"
