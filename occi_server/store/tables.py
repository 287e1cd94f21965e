"""The database schema. Changes go through an alembic migration in migrations/versions."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    literal_column,
    text,
)

metadata = MetaData()

RUNNING = "running"  # a job's state while it works

entities = Table(
    "entities",
    metadata,
    Column("id", String(255), primary_key=True),
    # The server-generated name of the infrastructure behind the entity.
    Column("key", String(255), nullable=False, unique=True, index=True),
    Column("kind", String(1024), nullable=False),  # indexed first in the listing index
    Column("location", String(1024), nullable=False, unique=True),
    # Links: the source resource (deleting it deletes its links) and the target.
    Column("source_id", String(255), ForeignKey("entities.id", ondelete="CASCADE"),
           nullable=True),
    Column("target", Text, nullable=True),
    Column("target_id", String(255), nullable=True),
    Column("target_kind", String(1024), nullable=True),
    Column("attributes", JSON, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, index=True),
    Column("updated", DateTime(timezone=True), nullable=False),
    # Who may see and change it: its tenant's members (and operators). A shared
    # entity (one with the shared mixin) is visible to every tenant.
    Column("tenant", String(255), nullable=False, index=True, server_default="default"),
    Column("owner", String(1024), nullable=False, server_default="anonymous"),
    Column("shared", Boolean, nullable=False, server_default=false()),
    # Listings: a kind's members in creation order, a page at a time; location
    # lists from the index alone (it holds what a scope tests and the location).
    Index("ix_entities_listing", "kind", "created", "id", "tenant", "shared", "location"),
    # Links' ends, indexed for links alone: a resource's insert or delete
    # writes no entry in them. A target's links carry their tenant and kind
    # (a tenant's interfaces on public networks are counted from the index).
    *(Index(f"ix_entities_{columns[0]}", *columns,
            sqlite_where=text(f"{columns[0]} IS NOT NULL"),
            postgresql_where=text(f"{columns[0]} IS NOT NULL"))
      for columns in (("source_id",), ("target_id", "tenant", "kind"))),
)

entity_mixins = Table(
    "entity_mixins",
    metadata,
    Column("entity_id", String(255), ForeignKey("entities.id", ondelete="CASCADE"),
           primary_key=True),
    Column("mixin", String(1024), primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_entity_mixins_mixin", "mixin"),
)

# Mixins created at run time: user-defined tags (origin "user") and OS
# templates made by the compute save action (origin "provider").
categories = Table(
    "categories",
    metadata,
    Column("type_id", String(1024), primary_key=True),
    Column("scheme", String(1024), nullable=False),
    Column("term", String(255), nullable=False),
    Column("title", Text, nullable=True),
    Column("location", String(1024), nullable=False, unique=True),
    Column("depends", JSON, nullable=False),
    Column("applies", JSON, nullable=False),
    Column("origin", String(32), nullable=False),
    Column("info", JSON, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("tenant", String(255), nullable=True),  # None: offered to every tenant
)

# Addresses and MACs of network interfaces. The primary keys make the store
# refuse a second holder, whatever the concurrency; a link's rows go with it.
ip_allocations = Table(
    "ip_allocations",
    metadata,
    Column("network_id", String(255), ForeignKey("entities.id", ondelete="CASCADE"),
           primary_key=True),
    Column("address", String(64), primary_key=True),
    Column("link_id", String(255), nullable=False, unique=True),
)

# Public addresses reserved from the site's floating IP pools, one reservation
# each; the primary key refuses a second holder, whatever the concurrency. (No
# foreign key: the row is claimed before its reservation is stored, in the
# same transaction; deleting the reservation deletes it.)
public_addresses = Table(
    "public_addresses",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("pool", String(255), nullable=False),
    Column("reservation_id", String(255), nullable=False, unique=True),
)

mac_allocations = Table(
    "mac_allocations",
    metadata,
    Column("mac", String(17), primary_key=True),
    Column("link_id", String(255), nullable=False, unique=True),
)

# Signed image metadata of the marketplace, one row per image and endorser.
marketplace_entries = Table(
    "marketplace_entries",
    metadata,
    Column("identifier", String(64), primary_key=True),
    Column("endorser", String(1024), primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("deprecated", Boolean, nullable=False),  # by the site, whatever the metadata says
    Column("document", JSON, nullable=False),  # as signed, so it can be checked again
)

# Long infrastructure work (provisioning, attaching) done after the request's
# transaction committed; a restart finds the ones it interrupted here.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("entity_id", String(255), nullable=False, index=True),
    Column("location", String(1024), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # running, done, failed
    Column("progress", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("tenant", String(255), nullable=False, server_default="default"),
    # The process at work on it (see service/presence.py); None: from before holders.
    Column("holder", String(255), nullable=True),
)
# The jobs at work, as queries and their index say it: the value written out,
# so that a planner proves the index's condition (a bound value does not to
# every planner). A reconciler pass looks for them, its write lock held,
# without reading the whole history.
RUNNING_JOBS = jobs.c.state == literal_column(f"'{RUNNING}'")
Index("ix_jobs_running", jobs.c.state, sqlite_where=RUNNING_JOBS, postgresql_where=RUNNING_JOBS)
# Listings, newest first: everyone's (operators) and a tenant's.
Index("ix_jobs_created", jobs.c.created)
Index("ix_jobs_tenant_created", jobs.c.tenant, jobs.c.created)

# Users known to the store (HTTP basic passwords, X.509 subjects), with the
# tenants they act for.
users = Table(
    "users",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("password_hash", Text, nullable=True),
    Column("subject_dn", String(1024), nullable=True, unique=True),
    Column("tenants", JSON, nullable=False),
    Column("admin", Boolean, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

# Every change of a resource that accounting cares about (created, state or
# size changed, deleted), kept after the resource is gone.
usage_events = Table(
    "usage_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("entity_id", String(255), nullable=False, index=True),
    Column("kind", String(1024), nullable=False),
    Column("tenant", String(255), nullable=False),
    Column("owner", String(1024), nullable=False),
    Column("event", String(16), nullable=False),  # created, changed, deleted
    Column("state", String(32), nullable=True),
    Column("details", JSON, nullable=False),
)

# What each tenant's entities of each kind add up to (the quotas' usage):
# how many, and the sum of each attribute TOTALLED names. Kept by every write
# of an entity, in its transaction (records/totals.py), instead of summed over
# the tenant's entities by each quota check. Sums are whole millionths: adding
# and taking away again leaves no rounding behind.
TOTALLED = {"cores": "occi.compute.cores", "memory": "occi.compute.memory",
            "size": "occi.storage.size"}
MILLIONTHS = 1_000_000
tenant_totals = Table(
    "tenant_totals",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("kind", String(1024), primary_key=True),
    Column("entities", BigInteger, nullable=False),
    *(Column(column, BigInteger, nullable=False) for column in TOTALLED),
)

# A number every change the OCCI model is built from (run-time categories,
# marketplace entries) increases: each worker keeps the model it built while
# the number holds, instead of building it for every request. One row, made
# by the first change.
model_generation = Table(
    "model_generation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", Integer, nullable=False),
)

# A number every committed change of what the API shows increases (entities,
# their mixins and links, categories, marketplace entries…; not the service's
# bookkeeping: leases, rate-limit counters, accounting): a worker answers a GET
# from memory while the number holds. One row, made by the first change.
data_generation = Table(
    "data_generation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", Integer, nullable=False),
)

# Secrets the site makes once and every worker and front end shares (the key
# that signs web sessions).
site_secrets = Table(
    "site_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# What a tenant keeps to create with later (CIMI's credentials, machine and
# volume templates, volume and network configurations): a document per row.
templates = Table(
    "templates",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("tenant", String(255), nullable=False),
    Column("name", String(255), nullable=True),
    Column("description", Text, nullable=True),
    Column("document", JSON, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Index("ix_templates_tenant_type", "tenant", "type"),
)

# Leases: who holds a site-wide role (the reconciler) or is alive (a process
# with jobs at work), until when; renewed by the holder, taken over once expired.
leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
)

# Requests counted against rate limits, per key and fixed window, where the
# store is shared by several front ends (PostgreSQL).
rate_hits = Table(
    "rate_hits",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("window_start", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
)

# The site's hypervisor hosts an operator added (`occi-server host add`): the
# SSH target or libvirt URI, whether new guests may go there, and the host
# keys pinned when it was added. Hosts of the configuration file are not here.
hypervisor_hosts = Table(
    "hypervisor_hosts",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("target", String(1024), nullable=False, unique=True),
    Column("draining", Boolean, nullable=False, default=False),
    Column("host_keys", Text, nullable=False, default=""),
    Column("added", DateTime(timezone=True), nullable=False),
)
