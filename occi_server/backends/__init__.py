"""Backends, chosen per area by name (registry.py) and imported only when
chosen, so a missing system library (libvirt) breaks only its own driver."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from occi_server.backends.base import Backends
from occi_server.backends.registry import SIMULATED, factory
from occi_server.backends.simulated import simulated_backends
from occi_server.errors import BackendUnavailable
from occi_server.images.catalogue import ImageCatalogue

if TYPE_CHECKING:
    from occi_server.backends.pool import PoolStorage
    from occi_server.config import Config

log = logging.getLogger("occi_server.backends")


def load_backends(config: Config) -> Backends:
    """The compute, storage and network backends the configuration chooses."""
    simulated = simulated_backends(
        config.simulated_images, config.simulated_failures, config.simulated_delay_seconds,
        config.data_path / "simulated", config.availability_zones)
    # Images have disks as soon as guests or volumes are real: the site's
    # directory catalogue. A wholly simulated site declares its images.
    catalogue = ImageCatalogue(config.images_path)
    compute_name, network_name = config.backend_for("compute"), config.backend_for("network")
    real = {compute_name, config.backend_for("storage")} != {SIMULATED}
    compute = simulated.compute if compute_name == SIMULATED \
        else factory("compute", compute_name)(config, catalogue)
    storage = load_pool(config)
    if storage is not None:
        try:
            storage.repair()
        except BackendUnavailable as exc:  # creates answer 503 until the target is back
            log.error("iSCSI exports not repaired: %s", exc.message)
    network = simulated.network if network_name == SIMULATED \
        else factory("network", network_name)(config)
    return Backends(compute, storage or simulated.storage, network,
                    catalogue if real else simulated.images)


def load_pool(config: Config) -> PoolStorage | None:
    """The configured pool of volumes (file pool or LVM) with its iSCSI
    exporter; None when storage is simulated. The service and the operator's
    commands use the same one."""
    name = config.backend_for("storage")
    if name == SIMULATED:
        return None
    from occi_server.backends import iscsi
    exporter = iscsi.choose_exporter(
        config.iscsi_exporter,
        iscsi.Credentials(config.data_path / "iscsi-site.key", config.effective_iqn_prefix),
        config.iscsi_portal, config.iscsi_initiators, config.iscsi_tgt_control_port)
    return factory("storage", name)(config, exporter)
