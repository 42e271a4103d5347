#!/usr/bin/env bash
# Runs the test suite with the project's virtual environment ($1, default .venv/bin).
set -euo pipefail
BIN=${1:-.venv/bin}
cd "$(dirname "$0")/.."
if [ -f scripts/test-setup.sh ]; then bash scripts/test-setup.sh "$BIN"; fi
exec "$BIN/python" -m pytest -n 2 --dist loadgroup -q "${@:2}"
