#!/usr/bin/env bash
# Starts the daemons occi-server drives, without systemd; does nothing for
# those already running. Run as root.
set -euo pipefail

getent group kvm >/dev/null || groupadd -r kvm
if ! getent passwd libvirt-qemu >/dev/null; then
  getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
  useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
fi
mkdir -p /run/libvirt /var/lib/libvirt /var/log/libvirt
# What udev does on an ordinary host. Without it libvirt finds /dev/kvm unusable
# for its QEMU user, judges its capability cache stale and re-probes QEMU on
# every domain definition (about 30 s each).
if [ -c /dev/kvm ]; then
  chgrp kvm /dev/kvm
  chmod 0660 /dev/kvm
fi

pgrep -x virtlogd >/dev/null || virtlogd -d
if ! pgrep -x libvirtd >/dev/null; then
  libvirtd -d
  for _ in $(seq 1 100); do
    [ -S /run/libvirt/libvirt-sock ] && break
    sleep 0.1
  done
fi
# The first connection probes QEMU's capabilities (several seconds); do it now.
virsh -c qemu:///system version >/dev/null

# The userspace iSCSI target, for the file pool's exports (tgtd forks itself).
# Alive means it answers (a dead one may linger as a zombie).
if command -v tgtd >/dev/null && ! tgtadm --lld iscsi --op show --mode target >/dev/null 2>&1
then
  tgtd --iscsi "portal=${OCCI_ISCSI_PORTAL:-127.0.0.1:3260}"
  for _ in $(seq 1 50); do
    tgtadm --lld iscsi --op show --mode target >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
