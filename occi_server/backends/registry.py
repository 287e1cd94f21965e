"""The backends each area can use, by name, and where each is made: adding a
backend is its own module and one line here. `simulated` is built in: one fake
serves all three areas.

A factory takes the configuration and what its area needs from the site:
compute (config, catalogue), storage (config, exporter), network (config)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

SIMULATED = "simulated"
BACKENDS: dict[str, dict[str, str]] = {
    "compute": {SIMULATED: "", "libvirt": "occi_server.backends.libvirt:libvirt_compute"},
    "storage": {SIMULATED: "", "filepool": "occi_server.backends.filepool:filepool_storage",
                "lvm": "occi_server.backends.lvm:lvm_storage"},
    "network": {SIMULATED: "", "bridge": "occi_server.backends.bridge:bridge_network"},
}


def factory(area: str, name: str) -> Callable[..., Any]:
    """The function that makes backend `name` of `area` (imported only now, so a
    missing system library breaks only its own driver)."""
    module, _, function = BACKENDS[area][name].partition(":")
    return getattr(import_module(module), function)
