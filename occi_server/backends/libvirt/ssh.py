"""Reaching hypervisor hosts over SSH: the site's key pair, the host keys
pinned when a host was added, and the libvirt URI that uses both.

libvirt's `qemu+ssh://` transport runs OpenSSH's client, here through a
wrapper of the site's (`ssh/ssh`, written from the data directory's paths)
that logs in with the site's key only and trusts the pinned host keys only,
with no ~/.ssh configuration involved. (libvirt's in-process libssh
transport takes those in its URI, but crashed a worker using one connection
from several threads.) On the host, sshd runs libvirt's virt-ssh-helper,
which reaches its daemon."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from occi_server.errors import BackendFailure, BackendUnavailable

KEY = "ssh/id_ed25519"
KNOWN_HOSTS = "ssh/known_hosts"
WRAPPER = "ssh/ssh"
SSH_SECONDS = 20
# user@host or user@host:port (host: a name, an IPv4 address or [an IPv6 one]).
TARGET = re.compile(r"(?:(?P<user>[a-z_][a-z0-9_.-]{0,31})@)?"
                    r"(?P<address>[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]+\])"
                    r"(?::(?P<port>[0-9]{1,5}))?")


@dataclass(frozen=True)
class Target:
    """Where a hypervisor host's sshd is, and whom to log in as."""

    user: str
    address: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> Target:
        found = TARGET.fullmatch(text)
        if found is None or not 0 < int(found["port"] or 22) < 65536:
            raise BackendFailure(f"{text!r} is not an SSH target: give [user@]host[:port], "
                                 "e.g. root@hv2 (or a libvirt URI)")
        return cls(found["user"] or "root", found["address"].strip("[]"),
                   int(found["port"] or 22))

    def __str__(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user}@{address}" + (f":{self.port}" if self.port != 22 else "")

    @property
    def login(self) -> list[str]:
        """ssh's arguments for this target (port, then user@address)."""
        return ["-p", str(self.port), f"{self.user}@{self.address}"]


def is_uri(target: str) -> bool:
    """Whether a host was given as a libvirt URI (used as it is) rather than over SSH."""
    return "://" in target


def site_key(data_path: Path) -> Path:
    """The site's SSH private key (made on first use); its public half is
    beside it, with `.pub`."""
    key = data_path / KEY
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "occi-server",
              "-f", str(key)], "ssh-keygen could not make the site's key")
    return key


def public_key(data_path: Path) -> str:
    return site_key(data_path).with_suffix(".pub").read_text().strip()


def scan(target: Target) -> list[str]:
    """The host keys target's sshd offers, as known_hosts lines."""
    result = subprocess.run(["ssh-keyscan", "-T", "10", "-p", str(target.port), target.address],
                            capture_output=True, text=True, timeout=SSH_SECONDS, check=False)
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    if not lines:
        raise BackendUnavailable(f"no SSH server answers at {target.address} port "
                                 f"{target.port}")
    return lines


def fingerprints(known_hosts_lines: list[str]) -> list[str]:
    """SHA256 fingerprints of the keys (as `ssh-keygen -l` prints them)."""
    with tempfile.NamedTemporaryFile("w", suffix=".keys") as keys:
        keys.write("\n".join(known_hosts_lines) + "\n")
        keys.flush()
        listing = _run(["ssh-keygen", "-l", "-f", keys.name], "the host keys are not readable")
    return [line.split()[1] for line in listing.splitlines() if len(line.split()) > 1]


def write_known_hosts(data_path: Path, lines: list[str]) -> Path:
    """The pinned host keys of every host, in the file libvirt checks against
    (rewritten only when it changed; replaced whole, never half-written)."""
    return _write(data_path / KNOWN_HOSTS, "".join(line + "\n" for line in lines), 0o600)


def ssh_options(data_path: Path) -> list[str]:
    """ssh's options to log in with the site's key, trusting the pinned keys only."""
    return ["-i", str(site_key(data_path)), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={data_path / KNOWN_HOSTS}",
            "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"ConnectTimeout={SSH_SECONDS // 2}"]


def logs_in(target: Target, data_path: Path) -> bool:
    """Whether the host lets the site's key in (and has the pinned key)."""
    return subprocess.run(["ssh", *ssh_options(data_path), *target.login, "true"],
                          capture_output=True, timeout=SSH_SECONDS * 2, check=False
                          ).returncode == 0


def install_key(target: Target, data_path: Path) -> None:
    """Put the site's public key into the host's authorized keys with
    ssh-copy-id, which asks for the user's password on this terminal."""
    key = site_key(data_path)
    result = subprocess.run(
        ["ssh-copy-id", "-i", str(key.with_suffix(".pub")), "-o",
         f"UserKnownHostsFile={data_path / KNOWN_HOSTS}", "-o", "StrictHostKeyChecking=yes",
         *target.login], check=False)
    if result.returncode != 0:
        raise BackendFailure(f"the site's key was not installed on {target}")


def address_of(target: Target) -> str:
    """The host's IP address (an IPv4 one when it has both)."""
    try:
        found = socket.getaddrinfo(target.address, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise BackendUnavailable(f"{target.address} has no address: {exc}") from None
    found.sort(key=lambda entry: entry[0] != socket.AF_INET)
    return str(found[0][4][0])


def remote_command(args: list[str]) -> str:
    """The command line sshd hands the host's shell: every word quoted."""
    return shlex.join(args)


def libvirt_uri(target: str, data_path: Path) -> str:
    """How libvirt reaches a host given as an SSH target (or as a URI, kept)."""
    if is_uri(target):
        return target
    parsed = Target.parse(target)
    address = f"[{parsed.address}]" if ":" in parsed.address else parsed.address
    options = {"command": str(ssh_command(data_path)), "keyfile": str(data_path / KEY),
               "no_tty": "1"}
    query = "&".join(f"{name}={quote(value, safe='/')}" for name, value in options.items())
    return f"qemu+ssh://{quote(parsed.user)}@{address}:{parsed.port}/system?{query}"


def ssh_command(data_path: Path) -> Path:
    """The ssh that libvirt runs: OpenSSH's, with the options of `ssh_options`
    (the file is rewritten only when they changed)."""
    return _write(data_path / WRAPPER, "#!/bin/sh\nexec ssh -F /dev/null "
                  + shlex.join(ssh_options(data_path))
                  + ' -o ServerAliveInterval=5 -o ServerAliveCountMax=3 "$@"\n', 0o700)


def _write(path: Path, text: str, mode: int) -> Path:
    """`path` holding `text`, with `mode` (rewritten only when it changed;
    replaced whole, never half-written)."""
    if path.exists() and path.read_text() == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
    return path


def _run(command: list[str], failure: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=SSH_SECONDS,
                            check=False)
    if result.returncode != 0:
        raise BackendFailure(f"{failure}: {result.stderr.strip() or result.returncode}")
    return result.stdout
