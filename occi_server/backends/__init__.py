"""Backends, looked up by name and imported only when chosen, so a missing
system library breaks only its own driver."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from occi_server.backends.base import Backends


def load_backends(name: str, **options: Any) -> Backends:
    """The backends for `name` (see occi_server.config.BACKENDS)."""
    if name == "simulated":
        module = import_module("occi_server.backends.simulated")
        return module.simulated_backends(options.get("images", []), options.get("failures", []))
    raise ValueError(f"unknown backend {name!r}")
