"""OCCI Core and Infrastructure, declared once as data."""

from occi_server.kinds.infrastructure import builtin_categories
from occi_server.kinds.templates import (
    DEFAULT_FLAVOURS,
    Flavour,
    flavour_mixins,
    monitoring_mixin,
)

__all__ = [
    "DEFAULT_FLAVOURS",
    "Flavour",
    "builtin_categories",
    "flavour_mixins",
    "monitoring_mixin",
]
