"""A catalogue declared in the configuration (`simulated_images`): images with
a name, a size and a checksum but no disk, for sites whose compute and storage
are simulated."""

from __future__ import annotations

from typing import Any

from occi_server.images import Image
from occi_server.kinds.infrastructure import GIB


def _info(declared: dict[str, Any]) -> dict[str, Any]:
    """What a catalogue would know of an image: its size and checksum, when given."""
    info: dict[str, Any] = {}
    if declared.get("size_gib"):
        info["virtual_size"] = int(declared["size_gib"] * GIB)
    if declared.get("sha256"):
        info["sha256"] = str(declared["sha256"]).lower()
    if declared.get("login_user"):
        info["login_user"] = str(declared["login_user"])
    return info


class DeclaredCatalogue:
    def __init__(self, declared: list[dict[str, Any]]) -> None:
        self._images = [Image(term=d["term"], title=d.get("title", d["term"]),
                              os=d.get("os", "linux"), architecture=d.get("architecture", "x64"),
                              info=_info(d))
                        for d in declared]

    def images(self) -> list[Image]:
        return list(self._images)

    def find(self, term: str) -> Image | None:
        return next((image for image in self._images if image.term == term), None)

    def stamp(self) -> int:
        return 0  # declared once, at start
