"""Raw views of qcow2 volumes: a qemu-storage-daemon per volume exports the
qcow2 file's guest-visible bytes as a plain file (FUSE), so that iSCSI
exporters and guests on this host read and write one raw file whatever the
volume's format. The daemon is the only writer of the qcow2 file.

Views outlive the service (like tgtd targets): a restart adopts running
daemons through their pid files and restarts missing ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import AbstractContextManager
from pathlib import Path

from occi_server.backends.locks import file_lock
from occi_server.errors import BackendFailure

DAEMON = "qemu-storage-daemon"
FUSE_DEVICE = Path("/dev/fuse")


def _mounted(path: Path) -> bool:
    """Whether a file system is mounted on `path` (a dead FUSE daemon's stale mount too)."""
    wanted = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        for line in mounts:
            point = line.split(" ")[4].replace("\\040", " ").replace("\\134", "\\")
            if point == wanted:
                return True
    return False


def _alive(pid: int) -> bool:
    """Whether `pid` is a running storage daemon (not a zombie, not a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name, _, rest = stat.partition("(")[2].rpartition(")")
    return name.startswith(DAEMON[:15]) and rest.split()[0] != "Z"


class RawViews:
    def __init__(self, runtime: Path, daemon: str = DAEMON) -> None:
        self.runtime = runtime
        self.daemon = daemon
        runtime.mkdir(parents=True, exist_ok=True)

    def _pidfile(self, view: Path) -> Path:
        return self.runtime / f"{view.name}.pid"

    def _pid(self, view: Path) -> int | None:
        try:
            pid = int(self._pidfile(view).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _locked(self, view: Path) -> AbstractContextManager[None]:
        """One process at a time starts or stops a view (service workers start together)."""
        return file_lock(self.runtime / f"{view.name}.lock")

    def is_open(self, view: Path) -> bool:
        return self._pid(view) is not None and _mounted(view.resolve())

    def open(self, image: Path, view: Path) -> None:
        """Show the qcow2 `image` as the raw file `view` (idempotent)."""
        view = view.absolute()
        with self._locked(view):
            if self.is_open(view):
                return
            self._stop(view)
            if not FUSE_DEVICE.exists():
                raise BackendFailure("volumes cloned from images need FUSE (/dev/fuse) for "
                                     "qemu-storage-daemon; this host has none")
            view.touch(exist_ok=True)
            # JSON option syntax: no value needs QEMU's comma escaping.
            blockdevs = [{"driver": "file", "node-name": "file", "filename": str(image)},
                         {"driver": "qcow2", "node-name": "volume", "file": "file"}]
            export = {"type": "fuse", "id": "view", "node-name": "volume",
                      "mountpoint": str(view), "writable": True, "allow-other": "on"}
            command = [self.daemon]
            for blockdev in blockdevs:
                command += ["--blockdev", json.dumps(blockdev)]
            command += ["--export", json.dumps(export), "--pidfile", str(self._pidfile(view)),
                        "--daemonize"]
            try:
                subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
            except FileNotFoundError:
                raise BackendFailure(f"{self.daemon} is not installed "
                                     "(apt-get install qemu-system-common)") from None
            except subprocess.CalledProcessError as exc:
                raise BackendFailure(f"{self.daemon} could not open {image.name}: "
                                     f"{exc.stderr.strip()}") from None
            view.chmod(0o660)  # QEMU (another user) opens it; libvirt sets the owner

    def close(self, view: Path) -> None:
        """Stop the daemon of `view` and remove its mount (idempotent)."""
        view = view.absolute()
        with self._locked(view):
            self._stop(view)

    def _stop(self, view: Path) -> None:
        pid = self._pid(view)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        # The daemon leaves its FUSE mount behind when it exits; lift it.
        while _mounted(view):
            subprocess.run(["umount", "--lazy", str(view)], capture_output=True, timeout=60,
                           check=False)
            if _mounted(view):
                raise BackendFailure(f"{view} stays mounted")
        self._pidfile(view).unlink(missing_ok=True)
