"""Backends, looked up by name and imported only when chosen, so a missing
system library (libvirt) breaks only its own driver."""

from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path

from occi_server.backends.base import Backends
from occi_server.config import Config
from occi_server.errors import BackendUnavailable
from occi_server.images.catalogue import ImageCatalogue

log = logging.getLogger("occi_server.backends")


def load_backends(config: Config) -> Backends:
    """The compute, storage and network backends the configuration chooses."""
    simulated = import_module("occi_server.backends.simulated").simulated_backends(
        config.simulated_images, config.simulated_failures, config.simulated_delay_seconds,
        config.data_path / "simulated")
    # Images have disks as soon as guests or volumes are real: the site's
    # directory catalogue. A wholly simulated site declares its images.
    catalogue = ImageCatalogue(config.images_path)
    real = {config.backend_for("compute"), config.backend_for("storage")} != {"simulated"}
    compute = simulated.compute
    if config.backend_for("compute") == "libvirt":
        compute = import_module("occi_server.backends.libvirt").libvirt_compute(config, catalogue)
    storage = load_pool(config)
    if storage is not None:
        try:
            storage.repair()
        except BackendUnavailable as exc:  # creates answer 503 until the target is back
            log.error("iSCSI exports not repaired: %s", exc.message)
    network = simulated.network
    if config.backend_for("network") == "bridge":
        network = bridge_network(config)
    return Backends(compute, storage or simulated.storage, network,
                    catalogue if real else simulated.images)


def bridge_network(config: Config):  # -> BridgeNetwork
    """Bridges, DHCP and NAT in the configured network namespace (or the host's)."""
    from pyroute2 import IPRoute

    from occi_server.backends.bridge import BridgeNetwork
    from occi_server.backends.dhcp import DhcpServers
    from occi_server.backends.nat import Nat

    namespace = config.network_namespace
    enter: list[str] = []
    if namespace:
        if not Path(f"/run/netns/{namespace}").exists():
            raise BackendUnavailable(f"network namespace {namespace} does not exist "
                                     f"(create it with: ip netns add {namespace})")
        enter = ["nsenter", f"--net=/run/netns/{namespace}", "--"]

    def netlink() -> IPRoute:
        # flags=0: never create the namespace (pyroute2 would by default).
        return IPRoute(netns=namespace, flags=0) if namespace else IPRoute()

    nat = Nat(config.network_uplink, enter) if config.network_uplink else None
    return BridgeNetwork(netlink, DhcpServers(config.networks_path, enter),
                         config.network_uplink, nat, namespace)


def load_pool(config: Config):  # -> PoolStorage | None
    """The configured pool of volumes (file pool or LVM) with its iSCSI
    exporter; None when storage is simulated. The service and the operator's
    commands use the same one."""
    if config.backend_for("storage") not in ("filepool", "lvm"):
        return None
    iscsi = import_module("occi_server.backends.iscsi")
    exporter = iscsi.choose_exporter(
        config.iscsi_exporter,
        iscsi.Credentials(config.data_path / "iscsi-site.key", config.effective_iqn_prefix),
        config.iscsi_portal, config.iscsi_initiators, config.iscsi_tgt_control_port)
    if config.backend_for("storage") == "lvm":
        return import_module("occi_server.backends.lvm").LvmStorage(
            config.lvm_volume_group, config.data_path / "backups",
            config.storage_capacity_gib, config.quarantine_seconds, exporter)
    return import_module("occi_server.backends.filepool").FilePoolStorage(
        config.volumes_path, config.volumes_path / "quarantine",
        config.storage_capacity_gib, config.quarantine_seconds, exporter)
