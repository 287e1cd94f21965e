"""pyssf 0.4.7 (2012, Python 2.7, in memory) serving one compute, for
bench_entity.py. Every worker makes the same compute when it loads this
module, as pyssf's registry lives in each process's memory. Its text
rendering takes attribute values as strings only."""

from occi.backend import ActionBackend, KindBackend
from occi.core_model import Resource
from occi.extensions import infrastructure
from occi.wsgi import Application

COMPUTE_ID = "/compute/bench"


class ComputeBackend(KindBackend, ActionBackend):
    """Keeps what it is given (pyssf's registry holds the entity)."""

    def create(self, entity, extras):
        entity.attributes["occi.compute.state"] = "active"

    def action(self, entity, action, attributes, extras):
        pass


application = Application()
backend = ComputeBackend()
application.register_backend(infrastructure.COMPUTE, backend)
for action in (infrastructure.START, infrastructure.STOP, infrastructure.RESTART,
               infrastructure.SUSPEND):
    application.register_backend(action, backend)

compute = Resource(COMPUTE_ID, infrastructure.COMPUTE, [])
compute.attributes.update({"occi.core.title": "bench", "occi.compute.cores": "1",
                           "occi.compute.memory": "1.0", "occi.compute.state": "active",
                           "occi.compute.architecture": "x64"})
application.registry.add_resource(COMPUTE_ID, compute, None)
