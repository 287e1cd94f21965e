#!/usr/bin/env bash
# Installs what occi-server needs on a Debian 12 host (run as root) and
# creates the Python virtual environment in .venv. Idempotent and quick when
# nothing changed. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

extras="postgresql,libvirt,lio"
[ "${1:-}" = "--test" ] && extras="test"

# System packages, installed only when missing so that a prepared host is not
# touched: Python with venv, libvirt + QEMU (compute), genisoimage (cloud-init
# seeds), busybox-static and cpio (the tiny test image), debootstrap and
# e2fsprogs (the Debian cloud image), openssh-client, tgt and libiscsi
# (iSCSI), lvm2, dnsmasq and nftables (networks), and what libvirt-python
# compiles with and against (a C compiler, libc and Python headers: a minimal
# Debian has none of them).
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv python3-pip)
for pair in curl:curl libvirtd:libvirt-daemon virsh:libvirt-clients \
            qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils genisoimage:genisoimage \
            cpio:cpio pkg-config:pkg-config tgtd:tgt iscsi-readcapacity16:libiscsi-bin \
            lvcreate:lvm2 dnsmasq:dnsmasq-base dhcp_release:dnsmasq-utils \
            nft:nftables openssl:openssl debootstrap:debootstrap mke2fs:e2fsprogs \
            ssh:openssh-client ip:iproute2 gcc:gcc; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] \
  || need+=(libvirt-daemon-driver-qemu)
[ -e /usr/include/libvirt/libvirt.h ] || need+=(libvirt-dev)
[ -e /usr/include/stdio.h ] || need+=(libc6-dev)
python3 -c 'import os, sysconfig; os.stat(sysconfig.get_paths()["include"] + "/Python.h")' \
  2>/dev/null || need+=(python3-dev)
ls /usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so >/dev/null 2>&1 || need+=(qemu-block-extra)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
if [ "$extras" = test ]; then
  # The store tests run a private PostgreSQL cluster. Installed only when no
  # server is present (installing over an existing one would upgrade it).
  command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || need+=(postgresql)
  # The marketplace's web page is tested in a real headless browser.
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  # A second hypervisor host in the tests is reached over SSH.
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  # pOCCI, a Python 2 client, is converted with 2to3 (tests/support/pocci.py).
  python3 -c 'import lib2to3' 2>/dev/null || need+=(python3-lib2to3)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root so they can be installed with apt-get" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"setup: Python 3.11 or newer is needed, found {sys.version.split()[0]}")
PY

[ -x .venv/bin/python ] || python3 -m venv .venv
# The test extras hold the service's own, so a test install serves both commands.
hash=$(sha256sum pyproject.toml | cut -c1-16)
stamp=".venv/.installed-$extras-$hash"
if [ ! -e "$stamp" ] && [ ! -e ".venv/.installed-test-$hash" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[$extras]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

if [ "$extras" = test ]; then
  # The OCCI clients the tests run as they are (from PyPI; see tests/support/).
  .venv/bin/python -m tests.support.pocci
  .venv/bin/python -m tests.support.im
fi
