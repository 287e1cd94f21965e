"""The service layer: validates requests against the model, persists them in
the store and drives the backends. HTTP knows nothing of backends; backends
know nothing of HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from occi_server.backends.base import Backends
from occi_server.config import Config, ConfigError
from occi_server.core import Mixin, Model
from occi_server.kinds import DEFAULT_FLAVOURS, Flavour, builtin_categories, flavour_mixins
from occi_server.kinds.infrastructure import COMPUTE, OS_TPL
from occi_server.service.work import Settings, Target, Work
from occi_server.store import Repository, Store

__all__ = ["Service", "Target", "Work"]

log = logging.getLogger("occi_server.service")


class Service:
    def __init__(self, config: Config, store: Store, backends: Backends) -> None:
        self.store = store
        self.backends = backends
        self.site_scheme = config.effective_site_scheme
        flavours = [Flavour(**f) for f in config.flavours] if config.flavours \
            else list(DEFAULT_FLAVOURS)
        default = next((f for f in flavours if f.term == config.default_flavour), None)
        if default is None:
            raise ConfigError(f"default_flavour {config.default_flavour!r} is not one of the "
                              f"flavours: {', '.join(f.term for f in flavours)}")
        name = backends.compute.name
        backend_mixin = Mixin(
            self.site_scheme + "backend#", name,
            title=("Simulated backend: no real infrastructure behind this entity"
                   if backends.simulated else f"Served by the {name} backend"),
            location=f"/mixin/backend/{name}/", origin="provider", managed=True)
        self.builtin = Model([*builtin_categories(), *flavour_mixins(flavours), backend_mixin])
        self.settings = Settings(
            site_scheme=self.site_scheme,
            default_sizes={"occi.compute.cores": default.cores,
                           "occi.compute.memory": float(default.memory)},
            max_page_size=config.max_page_size,
            backend_mixin=backend_mixin.type_id,
        )
        if backends.simulated:
            log.warning("running the SIMULATED backend: compute, storage and network are not "
                        "real; every entity carries the mixin %s", backend_mixin.type_id)

    def model(self, repo: Repository) -> Model:
        """The model in force: built-in categories, images as os_tpl mixins,
        and the mixins created at run time."""
        images = [Mixin(
            self.site_scheme + "os_tpl#", image.term, title=image.title,
            depends=(OS_TPL.type_id,), applies=(COMPUTE.type_id,),
            location=f"/mixin/os_tpl/{image.term}/", origin="provider",
            info={"os": image.os, "architecture": image.architecture},
        ) for image in self.backends.compute.images()]
        return self.builtin.extended([*images, *repo.mixins()])

    @contextmanager
    def work(self, *, write: bool, local_path: Callable[[str], str]) -> Iterator[Work]:
        """A unit of work in one transaction. An infrastructure failure that the
        work recorded (entity left in state error) is raised after commit."""
        with self.store.transaction(write=write) as repo:
            work = Work(repo, self.model(repo), self.backends, self.settings, local_path)
            yield work
        if work.failure is not None:
            raise work.failure
