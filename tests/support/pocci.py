"""pOCCI, CESNET's OCCI compliance tool (the ETSI TS 103 142 test
descriptions), made runnable here from its release on PyPI.

pOCCI 1.0.3 is the last release, a Python 2 sdist that PyPI's pip cannot
install (its setup.py reads a README.md the archive lacks, and relies on
setuptools' removed use_2to3). So, as its setup.py would have done: the sdist
is fetched from PyPI by name and checked against the index's SHA-256,
unpacked, and converted with 2to3; its four case-insensitive regular
expressions get their inline flag moved to the front, which Python 3.11
requires. Nothing else of its code changes. pycurl, its one dependency, comes
from PyPI through the test extra.

    .venv/bin/python -m tests.support.pocci    # prepares it (scripts/setup.sh --test)
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import requests

VERSION = "1.0.3"
HOME = Path("/var/tmp/occi-test-clients") / f"pOCCI-{VERSION}"
INDEX = "https://pypi.org/simple/pocci/"
_FLAG_AFTER_ANCHOR = re.compile(r"r'\^(\(?)\(\?i\)")


def prepared() -> Path | None:
    """Where pOCCI's package lies, ready to run; None if it is not prepared."""
    return HOME if (HOME / "pOCCI" / "pOCCI.py").exists() and (HOME / ".converted").exists() \
        else None


def prepare() -> Path:
    if prepared():
        return HOME
    index = requests.get(INDEX, timeout=60,
                         headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    index.raise_for_status()
    [release] = [f for f in index.json()["files"] if f["filename"] == f"pOCCI-{VERSION}.tar.gz"]
    archive = requests.get(release["url"], timeout=120)
    archive.raise_for_status()
    if hashlib.sha256(archive.content).hexdigest() != release["hashes"]["sha256"]:
        raise SystemExit(f"pOCCI {VERSION}: the archive does not match PyPI's SHA-256")
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        members = tar.getmembers()
        if any(m.name.startswith(("/", "..")) or ".." in Path(m.name).parts
               or not (m.isfile() or m.isdir()) for m in members):
            raise SystemExit(f"pOCCI {VERSION}: the archive holds a path outside itself")
        tar.extractall(HOME.parent, members=members)  # noqa: S202 - checked above
    subprocess.run([sys.executable, "-W", "ignore", "-m", "lib2to3", "-w", "-n", "pOCCI"],
                   cwd=HOME, check=True, capture_output=True)
    for module in (HOME / "pOCCI").glob("*.py"):
        text = module.read_text()
        module.write_text(_FLAG_AFTER_ANCHOR.sub(lambda m: f"r'(?i)^{m.group(1)}", text))
    (HOME / ".converted").touch()
    return HOME


if __name__ == "__main__":
    print(f"pOCCI {VERSION} ready in {prepare()}")
