"""The Debian image's description is not its recipe: an image built before
the description changed takes the new one without being built again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from occi_server.images import debian


def test_a_built_image_takes_the_current_description(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_build(*args: str) -> None:
        raise AssertionError(f"the image was built again: {args}")

    monkeypatch.setattr(debian.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(debian, "run", no_build)
    metadata = tmp_path / "images" / "debian-12.json"
    metadata.parent.mkdir()
    built = {"title": "an older title", "version": debian.recipe(), "disk": "debian-12.qcow2",
             "sha256": "ab" * 32, "format": "qcow2"}
    metadata.write_text(json.dumps(built))
    assert debian.build(metadata.parent, tmp_path / "cache") == metadata
    described = json.loads(metadata.read_text())
    assert described == {**built, **debian.DESCRIPTION}
    assert described["login_user"] == "debian"
    assert [p.name for p in metadata.parent.iterdir()] == ["debian-12.json"]
