"""cloud-init NoCloud seeds: an ISO 9660 image labelled `cidata` holding
meta-data, user-data and network-config."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from occi_server.backends.base import Context
from occi_server.errors import BackendFailure

# Every ethernet interface takes a DHCP lease (the network hands out fixed leases).
NETWORK_CONFIG = ('version: 2\nethernets:\n  all:\n    match:\n      name: "e*"\n'
                  '    dhcp4: true\n')


def _scalar(value: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(value)


def meta_data(instance_id: str, hostname: str, ssh_keys: tuple[str, ...]) -> str:
    lines = [f"instance-id: {_scalar(instance_id)}", f"local-hostname: {_scalar(hostname)}"]
    if ssh_keys:
        lines.append("public-keys:")
        lines.extend(f"  - {_scalar(key.strip())}" for key in ssh_keys)
    return "\n".join(lines) + "\n"


def seed_iso(instance_id: str, hostname: str, context: Context) -> bytes:
    """The seed ISO (genisoimage, argument list, fixed file names)."""
    with tempfile.TemporaryDirectory() as work:
        directory = Path(work)
        destination = directory / "seed.iso"
        (directory / "meta-data").write_text(meta_data(instance_id, hostname, context.ssh_keys))
        (directory / "user-data").write_bytes(context.user_data or b"")
        (directory / "network-config").write_text(NETWORK_CONFIG)
        try:
            subprocess.run(
                ["genisoimage", "-quiet", "-output", str(destination), "-volid", "cidata",
                 "-joliet", "-rock", str(directory / "user-data"),
                 str(directory / "meta-data"), str(directory / "network-config")],
                check=True, capture_output=True, timeout=60)
        except FileNotFoundError:
            raise BackendFailure("genisoimage is not installed on this host") from None
        except subprocess.CalledProcessError as exc:
            raise BackendFailure("could not write the cloud-init seed: "
                                 + exc.stderr.decode(errors="replace")) from None
        return destination.read_bytes()
