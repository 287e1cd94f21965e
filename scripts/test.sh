#!/usr/bin/env bash
# Runs every check: lint, import layering, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/daemons.sh
. .venv/bin/activate
ruff check occi_server tests benchmarks
lint-imports --no-cache
# The slowest tests are named at the end: the whole run should stay well inside 20 minutes.
python -m pytest -q -p no:cacheprovider --durations=25 "$@"
