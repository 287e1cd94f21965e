"""OCCI Core kinds (GFD.221): entity, resource, link."""

from occi_server.core import Attribute, Kind
from occi_server.core.model import ENTITY as ENTITY_ID

CORE = "http://schemas.ogf.org/occi/core#"

# occi.core.id is server-assigned (a client may propose one on create), so it
# is immutable and not required.
ENTITY = Kind(
    CORE,
    "entity",
    title="Entity",
    attributes=(
        Attribute("occi.core.id", mutable=False, description="Unique identifier"),
        Attribute("occi.core.title", description="Display name", max_length=1024),
    ),
)
RESOURCE = Kind(
    CORE,
    "resource",
    title="Resource",
    parent=ENTITY_ID,
    location="/resource/",
    attributes=(Attribute("occi.core.summary", description="Short summary", max_length=4096),),
)
LINK = Kind(
    CORE,
    "link",
    title="Link",
    parent=ENTITY_ID,
    location="/link/",
    attributes=(
        Attribute("occi.core.source", mutable=False, required=True,
                  description="Location of the source resource"),
        Attribute("occi.core.target", mutable=False, required=True,
                  description="Location (or URI) of the target"),
        Attribute("occi.core.target.kind", mutable=False,
                  description="Kind of the target resource"),
    ),
)
