"""OCCI Infrastructure (GFD.224) plus the contextualization mixins that
deployed clients send (OCCI 1.2 and the legacy EGI/OpenStack ones)."""

from __future__ import annotations

from occi_server.core import Action, Attribute, AttrType, Category, Kind, Mixin
from occi_server.core.states import machine
from occi_server.kinds.core import ENTITY, LINK, RESOURCE
from occi_server.kinds.tenancy import QUOTA

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
COMPUTE_ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
NETWORK_ACTION = "http://schemas.ogf.org/occi/infrastructure/network/action#"
STORAGE_ACTION = "http://schemas.ogf.org/occi/infrastructure/storage/action#"

# Decoded user data above this size is refused: cloud-init seeds are small.
GIB = 1024 ** 3  # occi.compute.memory and occi.storage.size are in GiB
STORAGE_SIZE = "occi.storage.size"
USER_DATA_MAX_BYTES = 64 * 1024
_USER_DATA_MAX_CHARS = 4 * ((USER_DATA_MAX_BYTES + 2) // 3)  # its Base64 length


def _method(choices: tuple[str, ...], default: str, **aliases: str) -> Attribute:
    return Attribute("method", enum=choices, default=default, aliases=aliases,
                     description="How to carry out the action: " + ", ".join(choices))


def _state(prefix: str, states: tuple[str, ...], default: str) -> tuple[Attribute, Attribute]:
    return (
        # `waiting`: being set up by a job (rOCCI's extension, known to its clients).
        Attribute(f"{prefix}.state", mutable=False, enum=(*states, "waiting"), default=default,
                  description="Current state"),
        Attribute(f"{prefix}.state.message", mutable=False,
                  description="Human-readable explanation of the current state"),
    )


START = Action(COMPUTE_ACTION, "start", title="Start the compute")
STOP = Action(COMPUTE_ACTION, "stop", title="Stop the compute",
              attributes=(_method(("graceful", "acpioff", "poweroff"), "graceful"),))
RESTART = Action(COMPUTE_ACTION, "restart", title="Restart the compute",
                 attributes=(_method(("graceful", "warm", "cold"), "graceful"),))
SUSPEND = Action(COMPUTE_ACTION, "suspend", title="Suspend the compute",
                 attributes=(_method(("hibernate", "suspend"), "suspend"),))
SAVE = Action(
    COMPUTE_ACTION, "save", title="Save the compute's disk as a new OS template",
    attributes=(
        _method(("hot", "deferred"), "hot", deffered="deferred"),
        Attribute("name", description="Title of the new OS template", max_length=255),
    ),
)

COMPUTE_ARCHITECTURE = Attribute(
    "occi.compute.architecture", enum=("x86", "x64"),
    aliases={"x86_64": "x64", "amd64": "x64", "i386": "x86", "i686": "x86"},
    description="CPU architecture")
COMPUTE = Kind(
    INFRA, "compute", title="Compute Resource", parent=RESOURCE.type_id, location="/compute/",
    attributes=(
        COMPUTE_ARCHITECTURE,
        Attribute("occi.compute.cores", AttrType.INTEGER, minimum=1, maximum=512,
                  description="Number of virtual CPU cores"),
        Attribute("occi.compute.hostname", format="hostname",
                  description="Fully qualified host name of the guest"),
        Attribute("occi.compute.share", AttrType.INTEGER, minimum=0, maximum=262144,
                  description="Relative CPU share"),
        Attribute("occi.compute.speed", AttrType.FLOAT, minimum=0.01,
                  description="CPU clock speed in GHz (OCCI 1.1); caps each vCPU's share "
                              "of a host CPU"),
        Attribute("occi.compute.memory", AttrType.FLOAT, minimum=0.0625, maximum=4096,
                  description="Memory in GiB"),
        *_state("occi.compute", ("active", "inactive", "suspended", "error"), "inactive"),
    ),
    actions=(START, STOP, RESTART, SUSPEND, SAVE),
    states=machine(
        "occi.compute.state", "inactive",
        start=({"inactive", "suspended", "error"}, "active"),
        stop=({"active", "suspended", "error"}, "inactive"),
        restart=({"active"}, "active"),
        suspend=({"active"}, "suspended"),
        save=({"active", "inactive"}, None),
    ),
)

# The attributes that say which addresses a network hands out (and on which
# VLAN): changing them remakes its bridge and DHCP server.
NETWORK_ADDRESSING = frozenset({"occi.network.address", "occi.network.gateway",
                                "occi.network.allocation", "occi.network.vlan"})

UP = Action(NETWORK_ACTION, "up", title="Bring the network up")
DOWN = Action(NETWORK_ACTION, "down", title="Take the network down")
NETWORK = Kind(
    INFRA, "network", title="Network Resource", parent=RESOURCE.type_id, location="/network/",
    attributes=(
        Attribute("occi.network.vlan", AttrType.INTEGER, minimum=1, maximum=4094,
                  description="802.1Q VLAN identifier (1-4094), tagged on the site's uplink"),
        Attribute("occi.network.label", pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*", max_length=64,
                  description="Tag-based network label, e.g. external-dmz"),
        *_state("occi.network", ("active", "inactive", "error"), "inactive"),
    ),
    actions=(UP, DOWN),
    states=machine(
        "occi.network.state", "inactive",
        up=({"inactive", "error"}, "active"),
        down=({"active", "error"}, "inactive"),
    ),
)

ONLINE = Action(STORAGE_ACTION, "online", title="Bring the storage online")
OFFLINE = Action(STORAGE_ACTION, "offline", title="Take the storage offline")
# OCCI 1.1 actions that 1.2 dropped; deployed clients (rOCCI, ooi) still use them.
SNAPSHOT = Action(STORAGE_ACTION, "snapshot",
                  title="Copy the volume into a new storage resource",
                  attributes=(Attribute("name", max_length=255,
                                        description="Title of the new storage resource"),))
BACKUP = Action(STORAGE_ACTION, "backup", title="Copy the volume to the backup area")
STORAGE = Kind(
    INFRA, "storage", title="Storage Resource", parent=RESOURCE.type_id, location="/storage/",
    attributes=(
        Attribute(STORAGE_SIZE, AttrType.FLOAT, required=True, minimum=0.001,
                  maximum=1048576, description="Size in GiB"),
        *_state("occi.storage", ("online", "offline", "error"), "offline"),
    ),
    actions=(ONLINE, OFFLINE, SNAPSHOT, BACKUP),
    states=machine(
        "occi.storage.state", "offline",
        online=({"offline", "error"}, "online"),
        offline=({"online", "error"}, "offline"),
        snapshot=({"online", "offline"}, None),
        backup=({"online", "offline"}, None),
    ),
)

NETWORKINTERFACE = Kind(
    INFRA, "networkinterface", title="NetworkInterface Link", parent=LINK.type_id,
    location="/link/networkinterface/",
    attributes=(
        Attribute("occi.networkinterface.interface", mutable=False,
                  description="Device name inside the guest, e.g. eth0"),
        Attribute("occi.networkinterface.mac", format="mac",
                  description="MAC address of the interface"),
        *_state("occi.networkinterface", ("active", "inactive", "error"), "inactive"),
    ),
)

STORAGELINK = Kind(
    INFRA, "storagelink", title="StorageLink Link", parent=LINK.type_id,
    location="/link/storagelink/",
    attributes=(
        Attribute("occi.storagelink.deviceid", pattern=r"[A-Za-z0-9/_.:-]+", max_length=255,
                  description="Device the storage appears as in the guest, e.g. /dev/vdb"),
        Attribute("occi.storagelink.mountpoint", pattern=r"/[^\x00]*", max_length=4096,
                  description="Where the guest mounts the storage"),
        *_state("occi.storagelink", ("active", "inactive", "error"), "inactive"),
    ),
)

# Security groups as rOCCI-server 2 (OpenNebula) and ooi (OpenStack) extended
# OCCI Infrastructure for EGI's sites, with their scheme, terms and locations.
SECURITY_RULES = "occi.securitygroup.rules"
SECURITYGROUP = Kind(
    INFRA, "securitygroup", title="Security group: the traffic its computes accept and send",
    parent=RESOURCE.type_id, location="/securitygroup/",
    attributes=(
        Attribute(SECURITY_RULES, AttrType.ARRAY,
                  description='Rules, each {"type": "inbound" or "outbound", "protocol": '
                              '"tcp", "udp", "icmp" or "all", "range": a CIDR, "port": '
                              '"22" or "1000-2000" (tcp and udp)}; inbound is denied but '
                              "for what a rule allows; outbound is allowed unless an "
                              "outbound rule exists"),
        *_state("occi.securitygroup", ("active", "inactive", "error"), "inactive"),
    ),
)
SECURITYGROUPLINK = Kind(
    INFRA, "securitygrouplink", title="Security group link: a compute in a security group",
    parent=LINK.type_id, location="/link/securitygrouplink/",
    attributes=_state("occi.securitygrouplink", ("active", "inactive", "error"), "inactive"),
)

# IP reservations as rOCCI-server 2 offered them: a public address from a
# floating IP pool, kept whatever computes come and go, and given to one
# compute at a time through a networkinterface to it (as rOCCI's clients link).
RESERVED_ADDRESS = "occi.ipreservation.address"
IPRESERVATION = Kind(
    INFRA, "ipreservation", title="IP reservation: a public address of the site's pools",
    parent=RESOURCE.type_id, location="/ipreservation/",
    attributes=(
        Attribute(RESERVED_ADDRESS, format="ip",
                  description="The public address (given at creation, or the pool's first "
                              "free one)"),
        Attribute("occi.ipreservation.used", AttrType.BOOLEAN, mutable=False, default=False,
                  description="Whether a networkinterface from a compute leads it there"),
        *_state("occi.ipreservation", ("active", "inactive", "error"), "inactive"),
    ),
)
FLOATINGIPPOOL = Mixin(
    INFRA, "floatingippool", title="Floating IP pool: where reserved addresses come from",
    applies=(IPRESERVATION.type_id,), location="/mixin/floatingippool/")


def pool_scheme(site_scheme: str) -> str:
    """The scheme of the site's pools. Not ooi's (schemas.openstack.org/network/
    floatingippool#): IM, finding a pool there, would ask for a floating IP on a
    networkinterface to a network, which this site does not take; without one it
    adds an interface on the public network, which works."""
    return site_scheme + "floatingippool#"


def pool_mixins(site_scheme: str, pools: list[str]) -> list[Mixin]:
    """One floatingippool child mixin per pool the site offers."""
    return [Mixin(pool_scheme(site_scheme), pool, title=f"Floating IP pool {pool}",
                  depends=(FLOATINGIPPOOL.type_id,), applies=(IPRESERVATION.type_id,),
                  location=f"/mixin/floatingippool/{pool}/", origin="provider")
            for pool in pools]


_ALLOCATION = ("dynamic", "static")

IPNETWORK = Mixin(
    "http://schemas.ogf.org/occi/infrastructure/network#", "ipnetwork",
    title="IP network", applies=(NETWORK.type_id,), location="/mixin/ipnetwork/",
    attributes=(
        Attribute("occi.network.address", format="cidr",
                  description="IP range in CIDR notation, e.g. 192.168.0.0/24"),
        Attribute("occi.network.gateway", format="ip", description="Gateway address"),
        Attribute("occi.network.allocation", enum=_ALLOCATION, default="dynamic",
                  description="How addresses are assigned: dynamic (DHCP) or static"),
    ),
)

IPNETWORKINTERFACE = Mixin(
    "http://schemas.ogf.org/occi/infrastructure/networkinterface#", "ipnetworkinterface",
    title="IP network interface", applies=(NETWORKINTERFACE.type_id,),
    location="/mixin/ipnetworkinterface/",
    attributes=(
        Attribute("occi.networkinterface.address", format="ip",
                  description="IP address of the interface"),
        Attribute("occi.networkinterface.gateway", format="ip", description="Gateway address"),
        Attribute("occi.networkinterface.allocation", enum=_ALLOCATION, default="dynamic",
                  description="How the address is assigned: dynamic or static"),
    ),
)

# A network whose guests reach beyond the host: masqueraded to the site's uplink.
PUBLIC_NETWORK = Mixin(
    "http://schemas.occi-server.org/occi/infrastructure/network#", "public",
    title="Public network: NAT (masquerade) to the site's uplink", applies=(NETWORK.type_id,),
    depends=(IPNETWORK.type_id,), location="/mixin/public/")

# Computes of one tenant naming one group run on different hypervisor hosts.
ANTI_AFFINITY_GROUP = "occi.compute.anti_affinity_group"
ANTI_AFFINITY = Mixin(
    "http://schemas.occi-server.org/occi/infrastructure/compute#", "anti_affinity",
    title="Anti-affinity: computes of one group run on different hypervisor hosts",
    applies=(COMPUTE.type_id,), location="/mixin/anti_affinity/",
    attributes=(
        Attribute(ANTI_AFFINITY_GROUP, required=True, pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*",
                  max_length=64, description="The group (of the tenant's computes): none of "
                                             "its computes is placed on a host that runs "
                                             "another, when it is created"),
    ))

# rOCCI-server 2's parent of the zones a site offers: a compute with one of
# them runs on that zone's hypervisor hosts.
AVAILABILITY_ZONE = Mixin(
    INFRA, "availability_zone", title="Availability zone: the hosts a compute runs on",
    applies=(COMPUTE.type_id,), location="/mixin/availability_zone/")


def zone_mixins(site_scheme: str, zones: list[str]) -> list[Mixin]:
    """One availability_zone child mixin per zone of the compute backend."""
    return [Mixin(site_scheme + "availability_zone#", zone, title=f"Availability zone {zone}",
                  depends=(AVAILABILITY_ZONE.type_id,), applies=(COMPUTE.type_id,),
                  location=f"/mixin/availability_zone/{zone}/", origin="provider")
            for zone in zones]


SHARED = Mixin(
    "http://schemas.occi-server.org/occi/infrastructure#", "shared",
    title="Shared: visible to every tenant who may link to it (set by operators only)",
    applies=(COMPUTE.type_id, STORAGE.type_id, NETWORK.type_id), location="/mixin/shared/")

OS_TPL = Mixin(INFRA, "os_tpl", title="OS template", applies=(COMPUTE.type_id,),
               location="/mixin/os_tpl/")
RESOURCE_TPL = Mixin(INFRA, "resource_tpl", title="Resource template",
                     applies=(COMPUTE.type_id,), location="/mixin/resource_tpl/")
# OCCI's os_tpl applies to compute only; volumes cloned from an image name it
# with a child of this site-independent parent (one per catalogue image).
IMAGE_TPL = Mixin(
    "http://schemas.occi-server.org/occi/infrastructure#", "image_tpl",
    title="Image a volume is cloned from (copy-on-write)", applies=(STORAGE.type_id,),
    location="/mixin/image_tpl/")

SSH_KEY = Mixin(
    "http://schemas.ogf.org/occi/infrastructure/credentials#", "ssh_key",
    title="SSH public key credentials", applies=(COMPUTE.type_id,), location="/mixin/ssh_key/",
    attributes=(
        Attribute("occi.credentials.ssh.publickey", required=True, max_length=16384,
                  description="OpenSSH public key(s) installed for the default user"),
    ),
)
USER_DATA = Mixin(
    "http://schemas.ogf.org/occi/infrastructure/compute#", "user_data",
    title="Contextualization user data", applies=(COMPUTE.type_id,),
    location="/mixin/user_data/",
    attributes=(
        Attribute("occi.compute.userdata", required=True, max_length=_USER_DATA_MAX_CHARS,
                  description="cloud-init user data, Base64 or plain text, "
                              f"at most {USER_DATA_MAX_BYTES} bytes decoded"),
    ),
)
LEGACY_PUBLIC_KEY = Mixin(
    "http://schemas.openstack.org/instance/credentials#", "public_key",
    title="SSH public key (OpenStack/EGI legacy)", applies=(COMPUTE.type_id,),
    location="/mixin/openstack/public_key/",
    attributes=(
        Attribute("org.openstack.credentials.publickey.name", max_length=255,
                  description="Name of the key"),
        Attribute("org.openstack.credentials.publickey.data", required=True, max_length=16384,
                  description="OpenSSH public key"),
    ),
)
LEGACY_USER_DATA = Mixin(
    "http://schemas.openstack.org/compute/instance#", "user_data",
    title="User data (OpenStack/EGI legacy)", applies=(COMPUTE.type_id,),
    location="/mixin/openstack/user_data/",
    attributes=(
        Attribute("org.openstack.compute.user_data", required=True,
                  max_length=_USER_DATA_MAX_CHARS, description="Base64-encoded user data"),
    ),
)

# Pairs that carry the same information; a request with both is ambiguous.
EQUIVALENT_MIXINS = (
    (SSH_KEY.type_id, LEGACY_PUBLIC_KEY.type_id),
    (USER_DATA.type_id, LEGACY_USER_DATA.type_id),
)


def builtin_categories() -> list[Category]:
    """Every category the specifications define, plus the legacy contextualization mixins."""
    return [
        ENTITY, RESOURCE, LINK,
        COMPUTE, NETWORK, STORAGE, NETWORKINTERFACE, STORAGELINK, SECURITYGROUP,
        SECURITYGROUPLINK, IPRESERVATION, FLOATINGIPPOOL, IPNETWORK, IPNETWORKINTERFACE,
        PUBLIC_NETWORK, AVAILABILITY_ZONE, ANTI_AFFINITY,
        SHARED, OS_TPL, RESOURCE_TPL, IMAGE_TPL,
        SSH_KEY, USER_DATA, LEGACY_PUBLIC_KEY, LEGACY_USER_DATA, QUOTA,
    ]
