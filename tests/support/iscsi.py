"""Whether the real iSCSI target (tgtd) and initiator tools can be used here."""

from __future__ import annotations

import shutil
import subprocess

PORTAL = "127.0.0.1:3260"  # scripts/daemons.sh binds tgtd there


def tgt_unavailable_reason() -> str | None:
    if not shutil.which("tgtadm") or not shutil.which("iscsi-readcapacity16"):
        return "tgt or libiscsi-bin is not installed (scripts/setup.sh installs them)"
    probe = subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
                           capture_output=True)
    return None if probe.returncode == 0 else "tgtd is not running (scripts/daemons.sh)"
