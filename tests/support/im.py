"""IM 1.19.1 (GRyCAP's Infrastructure Manager; the last release that ships
its OCCI connector) in a virtual environment of its own, from PyPI: the IM
wheel without its dependencies, and the ones its OCCI connector and the
classes it uses import (not boto3, libcloud and the other clouds' libraries).

    .venv/bin/python -m tests.support.im    # prepares it (scripts/setup.sh --test)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VERSION = "1.19.1"
HOME = Path("/var/tmp/occi-test-clients") / f"im-{VERSION}"
PYTHON = HOME / "bin" / "python"
# What IM/connectors/OCCI.py and the classes it uses import, directly or through
# the modules they load (IM.VirtualMachine loads IM.REST for the boot commands).
NEEDS = ["radl", "netaddr", "paramiko", "scp", "requests", "PyYAML", "xmltodict", "psutil",
         "ansible-core", "requests-cache", "tosca-parser", "werkzeug", "flask", "cheroot",
         "suds-community", "hvac", "lxml"]
DRIVER = Path(__file__).with_name("im_driver.py")


def prepared() -> Path | None:
    """IM's Python, ready to run the driver; None if it is not prepared."""
    return PYTHON if (HOME / ".ready").exists() else None


def prepare() -> Path:
    if prepared():
        return PYTHON
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(HOME)], check=True)
    pip = [str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", f"im=={VERSION}"], check=True)
    subprocess.run([*pip, *NEEDS], check=True)
    subprocess.run([str(PYTHON), "-c", "import IM.connectors.OCCI, IM.InfrastructureInfo"],
                   check=True)
    (HOME / ".ready").touch()
    return PYTHON


if __name__ == "__main__":
    print(f"IM {VERSION} ready: {prepare()}")
