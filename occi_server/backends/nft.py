"""What the nftables users of the bridge backend (public networks' NAT,
reserved addresses, security groups) share: running a command in the
bridges' network namespace, and the script that empties a table whole."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from occi_server.errors import BackendFailure, BackendUnavailable


def run(enter: Sequence[str], args: Sequence[str], script: str | None = None) -> str:
    """`args` (nft, ip, sysctl) after `enter` (nsenter into the namespace); its output."""
    try:
        result = subprocess.run([*enter, *args], input=script, capture_output=True, text=True,
                                timeout=30)
    except FileNotFoundError:
        raise BackendUnavailable(f"{args[0]} is not installed (apt-get install nftables)") \
            from None
    if result.returncode != 0:
        raise BackendFailure(f"{args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def emptied(family: str, table: str) -> str:
    """The nft lines that remove `table`, whether or not it exists ("add" then
    "delete"): followed by its definition, they replace it in one transaction."""
    return f"add table {family} {table}\ndelete table {family} {table}\n"
