"""The site's image catalogue: bootable disk images (with their kernels when
they boot directly) in a directory, published as os_tpl mixins and cloned into
volumes as image_tpl; and the commands that put images into it (built from
the apt repositories, or imported). Backends are handed the catalogue; none
owns it."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Image:
    """A bootable image, published as an os_tpl mixin."""

    term: str
    title: str
    os: str = "linux"
    architecture: str = "x64"
    info: dict[str, Any] = field(default_factory=dict)


class Catalogue(Protocol):
    """What the service, the marketplace and the backends ask of the site's images."""

    def images(self) -> list[Image]:
        """The published images, in a stable order."""

    def find(self, term: str) -> Image | None:
        """The image published as `term`; None when there is none."""

    def stamp(self) -> Hashable:
        """A value that changes whenever the published images may have (cheap to ask)."""
