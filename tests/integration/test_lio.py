"""Kernel LIO through rtslib-fb, for real: it runs where configfs and the
target modules exist, and is skipped with the reason otherwise."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from occi_server.backends.iscsi import Credentials, LioExporter
from occi_server.errors import BackendUnavailable


def test_lio_exports_a_chap_protected_lun(tmp_path: Path) -> None:
    prefix = f"iqn.2026-11.test.lio-{uuid.uuid4().hex[:8]}"
    try:
        exporter = LioExporter(Credentials(tmp_path / "key", prefix), "127.0.0.1:3262")
    except BackendUnavailable as exc:
        pytest.skip(exc.message)
    if shutil.which("iscsi-readcapacity16") is None:
        pytest.skip("libiscsi-bin is not installed")
    volume = tmp_path / "vol-lio.img"
    with volume.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    target = exporter.export("vol-lio", volume)
    try:
        good = subprocess.run(["iscsi-readcapacity16", target.url()], capture_output=True,
                              text=True, timeout=30)
        assert "Total size:67108864" in good.stdout, good.stderr
        wrong = subprocess.run(["iscsi-readcapacity16",
                                target.url().replace(target.secret, "0" * 16)],
                               capture_output=True, text=True, timeout=30)
        assert wrong.returncode != 0
    finally:
        exporter.unexport("vol-lio")
    assert "vol-lio" not in exporter.exported()
