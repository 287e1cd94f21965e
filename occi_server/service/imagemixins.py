"""Catalogue images as OCCI mixins: an os_tpl for computes to boot (with what
the marketplace says of it) and an image_tpl for volumes to be cloned from."""

from __future__ import annotations

from typing import Any

from occi_server.core import Attribute, Mixin
from occi_server.images import Image
from occi_server.kinds.infrastructure import (
    COMPUTE,
    GIB,
    IMAGE_TPL,
    OS_TPL,
    STORAGE,
    STORAGE_SIZE,
)


def volume_image_mixin(site_scheme: str, image: Image) -> Mixin:
    """An image as the source of volumes: a child of image_tpl whose default
    occi.storage.size is the image's own size."""
    attributes = []
    if image.info.get("virtual_size"):
        size = next(a for a in STORAGE.attributes if a.name == STORAGE_SIZE)
        attributes.append(size.with_default(image.info["virtual_size"] / GIB))
    return Mixin(
        site_scheme + "image_tpl#", image.term, title=image.title,
        depends=(IMAGE_TPL.type_id,), applies=(STORAGE.type_id,),
        location=f"/mixin/image_tpl/{image.term}/", origin="provider",
        attributes=tuple(attributes),
        info={"os": image.os, "architecture": image.architecture},
    )


MARKETPLACE_ATTRIBUTES = {
    "identifier": "Marketplace identifier of the image (from its SHA-256)",
    "endorsers": "Certificate subjects of the endorsers who vouch for the image",
    "valid_until": "When the latest endorsement expires",
    "sha256": "SHA-256 of the image",
    "image_list": "The signed image list the image came from",
}


def image_mixin(site_scheme: str, image: Image, marketplace: dict[str, str] | None = None,
                **info: Any) -> Mixin:
    """An image as an OS template: a child of os_tpl in the site's scheme. An
    image the marketplace vouches for carries the marketplace attributes."""
    attributes = tuple(
        Attribute(f"occi_server.marketplace.{name}", mutable=False, default=value,
                  description=MARKETPLACE_ATTRIBUTES[name])
        for name, value in (marketplace or {}).items() if value)
    return Mixin(
        site_scheme + "os_tpl#", image.term, title=image.title,
        depends=(OS_TPL.type_id,), applies=(COMPUTE.type_id,),
        location=f"/mixin/os_tpl/{image.term}/", origin="provider", attributes=attributes,
        info={"os": image.os, "architecture": image.architecture,
              "login_user": image.info.get("login_user", ""), **info},
    )
