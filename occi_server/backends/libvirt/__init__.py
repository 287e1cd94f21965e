"""Compute on libvirt: QEMU guests with KVM or TCG."""

from __future__ import annotations

import logging

from occi_server.config import Config
from occi_server.images.catalogue import ImageCatalogue

log = logging.getLogger("occi_server.libvirt")


def libvirt_compute(config: Config, catalogue: ImageCatalogue):  # -> LibvirtCompute
    """Guests on the configured hosts, booted from the site's catalogue (saves go into it)."""
    from occi_server.backends.bridge import netlink_of
    from occi_server.backends.libvirt.accel import choose
    from occi_server.backends.libvirt.backend import LibvirtCompute
    from occi_server.backends.libvirt.fabric import Fabric

    accelerator = choose(config.accelerator, catalogue.find("tiny"),
                         config.data_path / "accelerator.json")
    log.info("guests run with %s: %s", accelerator.label, accelerator.reason)
    return LibvirtCompute(config.libvirt_hosts or [config.libvirt_uri], config.instances_path,
                          catalogue, accelerator,
                          shutdown_timeout=config.shutdown_timeout,
                          volume_access=config.volume_access,
                          zones=config.availability_zones, cpu_ratio=config.cpu_ratio,
                          fabric=Fabric(netlink_of(config.network_namespace), config.data_path)
                          if config.backend_for("network") == "bridge" else None)
