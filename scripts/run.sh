#!/usr/bin/env bash
# Runs a whole cloud on this host with the service's embedded defaults: SQLite
# in the data directory, compute on the local libvirt/QEMU, storage in a file
# pool exported over iSCSI by tgt, networks as local Linux bridges with dnsmasq,
# a default network (NATed to the host's uplink when it has a default route),
# and two OS templates: the tiny test image and Debian 12 with cloud-init and
# sshd (built from the apt repositories the first time, about 90 s). It prints
# how to boot them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/daemons.sh
data="${OCCI_DATA_DIR:-$PWD/data}"
mkdir -p "$data"
chmod 755 "$data"  # QEMU (user libvirt-qemu) reads images and disks below it
.venv/bin/occi-server image build tiny --data-dir "$data" >/dev/null
.venv/bin/occi-server image build debian-12 --data-dir "$data" >/dev/null
export OCCI_BACKEND="${OCCI_BACKEND:-simulated}"
export OCCI_COMPUTE_BACKEND="${OCCI_COMPUTE_BACKEND:-libvirt}"
export OCCI_STORAGE_BACKEND="${OCCI_STORAGE_BACKEND:-filepool}"
export OCCI_NETWORK_BACKEND="${OCCI_NETWORK_BACKEND:-bridge}"
# The uplink public networks are masqueraded to: the interface of the default route.
uplink="$(ip -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')"
export OCCI_NETWORK_UPLINK="${OCCI_NETWORK_UPLINK:-$uplink}"
listen="${OCCI_LISTEN:-127.0.0.1:8080}"
cidr="${OCCI_DEFAULT_NETWORK:-10.99.0.0/24}"

.venv/bin/occi-server serve --listen "$listen" --data-dir "$data" "$@" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"' INT TERM
for _ in $(seq 1 240); do
  curl -fsS -o /dev/null "http://$listen/-/" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { wait "$server"; exit 1; }
  sleep 0.5
done

# The default network (PUT: created once, left as it is afterwards).
public=""
[ -n "$OCCI_NETWORK_UPLINK" ] && public='
Category: public; scheme="http://schemas.occi-server.org/occi/infrastructure/network#"; class="mixin"'
gateway="${cidr%.*}.1"
curl -fsS -o /dev/null -X PUT "http://$listen/network/default" -H 'Content-Type: text/plain' \
  --data-binary "Category: network; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; class=\"kind\"
Category: ipnetwork; scheme=\"http://schemas.ogf.org/occi/infrastructure/network#\"; class=\"mixin\"$public
X-OCCI-Attribute: occi.core.title=\"default\"
X-OCCI-Attribute: occi.network.address=\"$cidr\"
X-OCCI-Attribute: occi.network.gateway=\"$gateway\"" \
  || echo "run: the default network was not created (see the service's log)" >&2

cat <<EOT
The cloud answers on http://$listen/ (default network $cidr${OCCI_NETWORK_UPLINK:+, NATed to $OCCI_NETWORK_UPLINK}).
Boot the tiny test guest on it:
  curl -i -X POST http://$listen/compute/ -H 'Content-Type: text/plain' --data-binary 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"
Category: tiny; scheme="http://$(hostname)/occi/os_tpl#"; class="mixin"
Link: </network/default>; rel="http://schemas.ogf.org/occi/infrastructure#network"'
Or start Debian 12 with your SSH key and log in to it:
  .venv/bin/occi -e http://$listen run debian-12 --ssh-key ~/.ssh/id_ed25519.pub --network default --ssh
EOT
wait "$server"
