"""A whole hypervisor host inside a network namespace the test creates: its
own libvirt daemon (so that guests' taps land on bridges in that namespace),
its own tgtd (so that QEMU's iSCSI initiator reaches a portal on the
namespace's loopback), and the namespace for the service's bridges and DHCP
servers. Nothing of it touches the machine's own network: a guest's traffic
stays on the namespace's bridges.

The libvirt daemon runs in a private mount namespace too, where its runtime,
state and domain definitions are directories of the test; the service reaches
it through its socket (qemu+unix:///system?socket=…)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.libvirt import reachable_dir

# Directories the private libvirt daemon sees as its own.
PRIVATE = {"run": "/run/libvirt", "lib": "/var/lib/libvirt", "log": "/var/log/libvirt",
           "qemu": "/etc/libvirt/qemu", "secrets": "/etc/libvirt/secrets"}
START = """set -e
mount --make-rprivate /
{mounts}
virtlogd -d -p "$1/virtlogd.pid"
libvirtd -d -p "$1/libvirtd.pid"
"""


SERVER = Path(sys.executable).parent / "occi-server"
# What scripts/run.sh starts: every area real, with the service's embedded defaults.
RUN_SH_BACKENDS = {"backend": "simulated", "compute_backend": "libvirt",
                   "storage_backend": "filepool", "network_backend": "bridge"}


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "a host in a network namespace needs root"
    for command in ("ip", "unshare", "libvirtd", "virtlogd", "tgtd", "tgtadm", "dnsmasq",
                    "ssh", "ssh-keygen", "debootstrap"):
        if shutil.which(command) is None:
            return f"{command} is not installed (scripts/setup.sh installs it)"
    return None


def run(*args: str, check: bool = True, timeout: float = 60,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check,
                          timeout=timeout, env=env)


SSHD = shutil.which("sshd") or "/usr/sbin/sshd"  # sbin may not be on PATH
SSHD_CONFIG = """ListenAddress {address}
HostKey {directory}/ssh/host_key
AuthorizedKeysFile {directory}/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile {directory}/sshd.pid
"""


@dataclass
class NamespaceHost:
    namespace: str
    directory: Path
    tgt_control_port: int
    address: str = ""  # on the link to another host (`link`)

    @property
    def libvirt_uri(self) -> str:
        return f"qemu+unix:///system?socket={self.directory / 'run' / 'libvirt-sock'}"

    def exec(self, *args: str, check: bool = True, timeout: float = 60,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace (where the guests' network is)."""
        return run("ip", "netns", "exec", self.namespace, *args, check=check, timeout=timeout,
                   env=env)

    def link(self, other: NamespaceHost, subnet: str) -> None:
        """A veth pair between this host and `other`, on `subnet` (a /24 prefix
        such as "10.231.7"): this one is .1, the other .2."""
        mine, theirs = f"{self.namespace[-6:]}-{other.namespace[-6:]}", "uplink0"
        run("ip", "-n", self.namespace, "link", "add", mine[:15], "type", "veth", "peer",
            "name", theirs, "netns", other.namespace)
        for host, device, address in ((self, mine[:15], f"{subnet}.1"),
                                      (other, theirs, f"{subnet}.2")):
            run("ip", "-n", host.namespace, "addr", "add", f"{address}/24", "dev", device)
            run("ip", "-n", host.namespace, "link", "set", device, "up")
            host.address = address

    @property
    def libvirtd_pid(self) -> int:
        return int((self.directory / "libvirtd.pid").read_text())

    def start_sshd(self) -> str:
        """An sshd on this host's link address, whose sessions see its libvirt
        daemon (they run in its mount namespace); root logs in with the keys
        put into `authorized_keys`. Returns the host key's SHA256 fingerprint."""
        ssh = self.directory / "ssh"
        ssh.mkdir()
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "host_key"))
        self.authorized_keys.touch(mode=0o600)
        config = ssh / "sshd_config"
        config.write_text(SSHD_CONFIG.format(address=self.address, directory=self.directory))
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        run("nsenter", "-t", str(self.libvirtd_pid), "-m", "-n", SSHD,
            "-f", str(config), "-E", str(ssh / "sshd.log"))
        return run("ssh-keygen", "-l", "-f", str(ssh / "host_key.pub")).stdout.split()[1]

    def own_directory(self, path: Path) -> Path:
        """`path` as a directory of this host's alone: its libvirt daemon, its
        guests and its SSH sessions see an empty directory there, which nothing
        else sees (no storage shared with the frontend). Returns where the
        machine sees it."""
        private = self.directory / "own" / path.name
        private.mkdir(parents=True)
        private.chmod(0o755)
        path.mkdir(parents=True, exist_ok=True)
        run("nsenter", "-t", str(self.libvirtd_pid), "-m", "mount", "--bind", str(private),
            str(path))
        return private

    @property
    def authorized_keys(self) -> Path:
        return self.directory / "ssh" / "authorized_keys"

    def freeze_libvirt(self, frozen: bool = True) -> None:
        """Stop (SIGSTOP) or resume (SIGCONT) this host's libvirt daemon: it
        neither answers nor fails, as a hung hypervisor."""
        os.kill(self.libvirtd_pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def environment(self, **settings: str) -> dict[str, str]:
        """The environment of an `occi-server` command on this host: the
        backends scripts/run.sh chooses, reaching this host's libvirt and tgtd."""
        settings = {**RUN_SH_BACKENDS, "libvirt_uri": self.libvirt_uri,
                    "network_namespace": self.namespace, "iscsi_exporter": "tgt",
                    "iscsi_tgt_control_port": str(self.tgt_control_port), **settings}
        return {**os.environ, **{f"OCCI_{name.upper()}": value for name, value in settings.items()}}

    @contextmanager
    def serve(self, data_dir: Path, **settings: str) -> Iterator[str]:
        """`occi-server serve` inside the namespace on its loopback, with the
        backends scripts/run.sh chooses, reaching this host's libvirt and tgtd;
        yields its URL (reached from inside the namespace only)."""
        env = self.environment(**settings)
        url, log = "http://127.0.0.1:8080", data_dir / "serve.log"
        # Its log goes to a file: a pipe nobody reads would stall a chatty server.
        with log.open("wb") as output:
            server = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, str(SERVER), "serve",
                 "--listen", "127.0.0.1:8080", "--data-dir", str(data_dir), "--workers", "2"],
                env=env, stdout=subprocess.DEVNULL, stderr=output, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while self.exec("curl", "-fsS", "-o", "/dev/null", f"{url}/-/",
                            check=False).returncode != 0:
                if server.poll() is not None:
                    raise RuntimeError(log.read_text(errors="replace"))
                if time.monotonic() > deadline:
                    raise RuntimeError("occi-server did not answer within 60 s")
                time.sleep(0.5)
            yield url
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)

    @classmethod
    def start(cls, *, tgt: bool = True) -> NamespaceHost:
        suffix = uuid.uuid4().hex[:6]
        host = cls(f"occi-nshost-{suffix}", reachable_dir("occi-nshost-"),
                   tgt_control_port=100 + int(suffix[:3], 16) % 800)
        run("ip", "netns", "add", host.namespace)
        try:
            run("ip", "-n", host.namespace, "link", "set", "lo", "up")
            host._start_libvirt()
            if tgt:
                host._start_tgt()
        except BaseException:
            host.stop()
            raise
        return host

    def _start_libvirt(self) -> None:
        for name in PRIVATE:
            (self.directory / name).mkdir()
        mounts = "\n".join(f'mount --bind "$1/{name}" {target}'
                           for name, target in PRIVATE.items())
        script = self.directory / "start.sh"
        script.write_text(START.format(mounts=mounts))
        self.exec("unshare", "--mount", "sh", str(script), str(self.directory))
        socket = self.directory / "run" / "libvirt-sock"
        deadline = time.monotonic() + 30
        while not socket.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the namespace's libvirt daemon did not start")
            time.sleep(0.1)
        run("virsh", "-c", self.libvirt_uri, "version")

    def _start_tgt(self) -> None:
        # Every address of the namespace: its loopback, and a link to another host.
        self.exec("tgtd", "-C", str(self.tgt_control_port), "--iscsi", "portal=0.0.0.0:3260")
        deadline = time.monotonic() + 10
        while self._tgtadm("--op", "show", "--mode", "target").returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the namespace's tgtd did not start")
            time.sleep(0.1)

    def _tgtadm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("tgtadm", "-C", str(self.tgt_control_port), "--lld", "iscsi", *args,
                   check=False)

    def stop(self) -> None:
        """Guests off, every process of the namespace (daemons, QEMU) gone, the
        namespace deleted; the private mounts go with their last process."""
        with contextlib.suppress(OSError, ValueError):
            self.freeze_libvirt(False)
        if (self.directory / "run" / "libvirt-sock").exists():
            listed = run("virsh", "-c", self.libvirt_uri, "list", "--all", "--name",
                         check=False).stdout.split()
            for name in listed:
                run("virsh", "-c", self.libvirt_uri, "destroy", name, check=False)
        # tgtd ignores SIGTERM while it has targets.
        self._tgtadm("--op", "delete", "--mode", "system")
        for pid in run("ip", "netns", "pids", self.namespace, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                continue
        run("ip", "netns", "del", self.namespace, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)
