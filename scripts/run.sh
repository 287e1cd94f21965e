#!/usr/bin/env bash
# Runs the service on one host with its embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export OCCI_BACKEND="${OCCI_BACKEND:-simulated}"
exec .venv/bin/occi-server serve --listen "${OCCI_LISTEN:-127.0.0.1:8080}" \
  --data-dir "${OCCI_DATA_DIR:-$PWD/data}" "$@"
