#!/usr/bin/env bash
# Runs the service on one host with its embedded defaults: SQLite in the data
# directory, compute on the local libvirt/QEMU, storage in a file pool,
# networks as local Linux bridges with dnsmasq (set OCCI_NETWORK_UPLINK for
# VLANs and public networks), and the tiny test image as an os_tpl.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/daemons.sh
data="${OCCI_DATA_DIR:-$PWD/data}"
mkdir -p "$data"
chmod 755 "$data"  # QEMU (user libvirt-qemu) reads images and disks below it
.venv/bin/python -c 'import sys; from pathlib import Path
from occi_server.backends.libvirt.tinyimage import build
build(Path(sys.argv[1]) / "images", Path(sys.argv[1]) / "cache")' "$data"
export OCCI_BACKEND="${OCCI_BACKEND:-simulated}"
export OCCI_COMPUTE_BACKEND="${OCCI_COMPUTE_BACKEND:-libvirt}"
export OCCI_STORAGE_BACKEND="${OCCI_STORAGE_BACKEND:-filepool}"
export OCCI_NETWORK_BACKEND="${OCCI_NETWORK_BACKEND:-bridge}"
listen="${OCCI_LISTEN:-127.0.0.1:8080}"
cat <<EOT
Boot the tiny test guest once the service answers:
  curl -i -X POST http://$listen/compute/ -H 'Content-Type: text/plain' --data-binary 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"
Category: tiny; scheme="http://$(hostname)/occi/os_tpl#"; class="mixin"'
EOT
exec .venv/bin/occi-server serve --listen "$listen" --data-dir "$data" "$@"
