"""iSCSI export of volumes: each volume is its own target, with CHAP
credentials of its own. Two exporters behind one interface: the kernel's LIO
(through rtslib-fb) on production hosts, and the userspace tgt daemon (through
tgtadm) where LIO is unavailable.

CHAP secrets are derived (HMAC-SHA256) from a site key kept in the data
directory, so they need no storage and survive restarts."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import re
import secrets
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from occi_server.backends.base import IscsiTarget
from occi_server.errors import BackendFailure, BackendUnavailable

log = logging.getLogger("occi_server.iscsi")
_TARGET_LINE = re.compile(r"^Target (\d+): (\S+)$", re.M)
UNIT_BUSY_SECONDS = 10  # how long a resize waits for a logical unit to go idle


class Credentials:
    """Per-volume target names and CHAP credentials, derived from a site key."""

    def __init__(self, key_file: Path, iqn_prefix: str) -> None:
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_hex(32))
        self._key = bytes.fromhex(key_file.read_text().strip())
        self.iqn_prefix = iqn_prefix

    def iqn(self, name: str) -> str:
        return f"{self.iqn_prefix}:{name}"

    def user(self, name: str) -> str:
        return f"occi-{hashlib.sha256(name.encode()).hexdigest()[:16]}"

    def secret(self, name: str) -> str:
        # 16 characters: within what every common initiator accepts (12 to 16).
        return hmac.new(self._key, name.encode(), hashlib.sha256).hexdigest()[:16]


class Exporter(ABC):
    name: str
    LUN: int

    def __init__(self, credentials: Credentials, portal: str) -> None:
        self.credentials = credentials
        self.portal = portal

    def target(self, name: str, lun: int) -> IscsiTarget:
        c = self.credentials
        return IscsiTarget(iqn=c.iqn(name), portal=self.portal, lun=lun, user=c.user(name),
                           secret=c.secret(name))

    @abstractmethod
    def export(self, name: str, path: Path) -> IscsiTarget:
        """Export the volume file as its own target (idempotent)."""

    @abstractmethod
    def unexport(self, name: str) -> None:
        """Remove the volume's target; a missing one is fine."""

    @abstractmethod
    def exported(self) -> set[str]:
        """Names of the volumes currently exported under our IQN prefix."""

    @abstractmethod
    def resized(self, name: str, path: Path) -> None:
        """The volume grew: its target reports the new capacity from now on,
        to initiators connected already too (they see a unit attention)."""

    def _ours(self, iqn: str) -> str | None:
        prefix = self.credentials.iqn_prefix + ":"
        return iqn[len(prefix):] if iqn.startswith(prefix) else None


class TgtExporter(Exporter):
    """The userspace target daemon, driven by tgtadm (argument lists only)."""

    name = "tgt"
    LUN = 1  # LUN 0 is tgt's controller

    def __init__(self, credentials: Credentials, portal: str, initiators: str = "ALL",
                 control_port: int = 0) -> None:
        super().__init__(credentials, portal)
        self.initiators = initiators
        # Which tgtd answers (tgtd -C N): several may run on one host, e.g. one
        # serving inside a network namespace.
        self.control_port = control_port

    def _tgtadm(self, *args: str) -> str:
        try:
            result = subprocess.run(["tgtadm", "-C", str(self.control_port), "--lld", "iscsi",
                                     *args], capture_output=True,
                                    text=True, timeout=60)
        except FileNotFoundError:
            raise BackendUnavailable("tgtadm is not installed on this host") from None
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip()
            if "can't send the request to the tgt daemon" in message or "connect" in message:
                raise BackendUnavailable(f"the tgt daemon is not running: {message}")
            raise BackendFailure(f"tgtadm {' '.join(args[:4])} failed: {message}")
        return result.stdout

    def _targets(self) -> dict[str, int]:
        shown = self._tgtadm("--op", "show", "--mode", "target")
        return {iqn: int(tid) for tid, iqn in _TARGET_LINE.findall(shown)}

    def export(self, name: str, path: Path) -> IscsiTarget:
        target = self.target(name, self.LUN)
        targets = self._targets()
        if target.iqn in targets:
            return target
        tid = str(max(targets.values(), default=0) + 1)
        self._tgtadm("--op", "new", "--mode", "target", "--tid", tid, "-T", target.iqn)
        try:
            self._tgtadm("--op", "new", "--mode", "logicalunit", "--tid", tid, "--lun",
                         str(self.LUN), "-b", str(path))
            self._account(target)
            self._tgtadm("--op", "bind", "--mode", "account", "--tid", tid, "--user",
                         target.user)
            self._tgtadm("--op", "bind", "--mode", "target", "--tid", tid, "-I",
                         self.initiators)
        except (BackendFailure, BackendUnavailable):
            self._remove(tid, target.user)
            raise
        return target

    def _account(self, target: IscsiTarget) -> None:
        try:
            self._tgtadm("--op", "new", "--mode", "account", "--user", target.user,
                         "--password", target.secret)
        except BackendFailure as exc:
            if "exist" not in str(exc):
                raise

    def unexport(self, name: str) -> None:
        target = self.target(name, self.LUN)
        tid = self._targets().get(target.iqn)
        if tid is not None:
            self._remove(str(tid), target.user)

    def _remove(self, tid: str, user: str) -> None:
        for args in (("--op", "delete", "--mode", "target", "--tid", tid, "--force"),
                     ("--op", "delete", "--mode", "account", "--user", user)):
            try:
                self._tgtadm(*args)
            except BackendFailure as exc:
                log.debug("while removing target %s: %s", tid, exc)

    def exported(self) -> set[str]:
        return {name for iqn in self._targets() if (name := self._ours(iqn)) is not None}

    def resized(self, name: str, path: Path) -> None:
        # tgt reads a backing file's size when its logical unit is made and cannot
        # change it: the unit is made again, the target and its sessions stay.
        tid = self._targets().get(self.target(name, self.LUN).iqn)
        if tid is None:
            return  # not exported: an export made later has the new size
        unit = ("--mode", "logicalunit", "--tid", str(tid), "--lun", str(self.LUN))
        # A unit with an initiator's commands in flight is "still active" for a moment.
        deadline = time.monotonic() + UNIT_BUSY_SECONDS
        while True:
            try:
                self._tgtadm("--op", "delete", *unit)
                break
            except BackendFailure as exc:
                if "still active" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._tgtadm("--op", "new", *unit, "-b", str(path))


class LioExporter(Exporter):
    """The kernel target (LIO) through rtslib-fb: a fileio backstore, an iSCSI
    target with one TPG, LUN 0, a portal, and TPG-wide CHAP."""

    name = "lio"
    LUN = 0

    def __init__(self, credentials: Credentials, portal: str, rtslib: Any = None) -> None:
        super().__init__(credentials, portal)
        try:
            self.rtslib = rtslib or importlib.import_module("rtslib_fb")
            self.root = self.rtslib.RTSRoot()
        except Exception as exc:  # missing module, no configfs, no target_core_mod
            raise BackendUnavailable(f"kernel LIO is not usable here: {exc}") from None

    def _find_target(self, iqn: str) -> Any:
        return next((t for t in self.root.targets if t.wwn == iqn), None)

    def export(self, name: str, path: Path) -> IscsiTarget:
        target = self.target(name, self.LUN)
        if self._find_target(target.iqn) is not None:
            return target
        rts = self.rtslib
        storage = rts.FileIOStorageObject(name, dev=str(path))
        iscsi_target = None
        try:
            iscsi_target = rts.Target(rts.FabricModule("iscsi"), target.iqn)
            tpg = rts.TPG(iscsi_target, 1)
            rts.LUN(tpg, self.LUN, storage)
            host, _, port = self.portal.rpartition(":")
            rts.NetworkPortal(tpg, host, int(port))
            tpg.set_attribute("generate_node_acls", "1")
            tpg.set_attribute("demo_mode_write_protect", "0")
            tpg.set_attribute("authentication", "1")
            tpg.chap_userid = target.user
            tpg.chap_password = target.secret
            tpg.enable = True
        except Exception as exc:
            if iscsi_target is not None:
                iscsi_target.delete()
            storage.delete()
            raise BackendFailure(f"LIO could not export {name}: {exc}") from None
        return target

    def unexport(self, name: str) -> None:
        target = self._find_target(self.credentials.iqn(name))
        if target is not None:
            target.delete()
        for storage in list(self.root.storage_objects):
            if storage.name == name:
                storage.delete()

    def resized(self, name: str, path: Path) -> None:
        # A fileio backstore on a block device (an LV) follows its size; on a
        # file its size is fixed when made, so the backstore and LUN are made again.
        if path.is_block_device():
            return
        target = self._find_target(self.credentials.iqn(name))
        if target is None:
            return  # not exported: an export made later has the new size
        rts = self.rtslib
        try:
            tpg = next(iter(target.tpgs))
            for lun in list(tpg.luns):
                lun.delete()
            for storage in list(self.root.storage_objects):
                if storage.name == name:
                    storage.delete()
            rts.LUN(tpg, self.LUN, rts.FileIOStorageObject(name, dev=str(path)))
        except Exception as exc:
            raise BackendFailure(f"LIO could not resize {name}: {exc}") from None

    def exported(self) -> set[str]:
        return {name for t in self.root.targets if (name := self._ours(t.wwn)) is not None}


def choose_exporter(setting: str, credentials: Credentials, portal: str,
                    initiators: str, tgt_control_port: int = 0) -> Exporter | None:
    """`auto`: LIO where the kernel offers it, else tgt; `none` exports nothing."""
    if setting == "none":
        return None
    if setting in ("auto", "lio"):
        try:
            return LioExporter(credentials, portal)
        except BackendUnavailable as exc:
            if setting == "lio":
                raise
            log.info("%s; exporting with tgt", exc.message)
    return TgtExporter(credentials, portal, initiators, tgt_control_port)
