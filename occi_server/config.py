"""Configuration: built-in defaults, then a TOML file, then OCCI_<KEY> environment
variables (e.g. OCCI_BACKEND=simulated, OCCI_DATABASE_URL=postgresql+psycopg://…)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from occi_server.backends.registry import BACKENDS
from occi_server.kinds.rules import parse_rules
from occi_server.kinds.tenancy import QUOTAS

INTERFACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
ZONE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
NAMESPACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
CIMI_PATH = re.compile(r"/[A-Za-z0-9_-]{1,32}/")
# First path segments the OCCI interface and the service's pages answer at.
RESERVED_TOP = frozenset({"-", "compute", "storage", "network", "link", "mixin", "resource",
                          "securitygroup", "ipreservation", "quota", "marketplace", "my",
                          "metrics", "health", "jobs", "glue"})
POLICY_KEYS = ("endorsers_allowed", "endorsers_denied", "images_denied", "checksums_denied",
               "require_endorsement")
# Settings that take one of a few words.
CHOICES = {"iscsi_exporter": ("auto", "lio", "tgt", "none"), "accelerator": ("auto", "kvm", "tcg"),
           "volume_access": ("local", "iscsi"),
           "log_format": ("text", "json"), "orphans": ("report", "clean", "adopt")}
AUTH_METHODS = ("basic", "oidc", "x509")
RATE_LIMIT = re.compile(r"\s*[1-9]\d*\s*/\s*(second|minute|hour|day)\s*")


# The settings of each driver, as a section of the config file ([libvirt]
# uri = …) naming the flat key it sets (libvirt_uri, also OCCI_LIBVIRT_URI in
# the environment). Flat keys in the file still work.
_POOL_SETTINGS = {"capacity_gib": "storage_capacity_gib",  # both pools have them
                  "quarantine_seconds": "quarantine_seconds"}
SECTIONS: dict[str, dict[str, str]] = {
    "libvirt": {"uri": "libvirt_uri", "hosts": "libvirt_hosts", "zones": "availability_zones",
                "accelerator": "accelerator",
                "instances_dir": "instances_dir", "shutdown_timeout": "shutdown_timeout",
                "volume_access": "volume_access", "cpu_ratio": "cpu_ratio"},
    "filepool": {"volumes_dir": "volumes_dir", **_POOL_SETTINGS},
    "lvm": {"volume_group": "lvm_volume_group", **_POOL_SETTINGS},
    "iscsi": {"exporter": "iscsi_exporter", "portal": "iscsi_portal",
              "iqn_prefix": "iscsi_iqn_prefix", "initiators": "iscsi_initiators",
              "tgt_control_port": "iscsi_tgt_control_port"},
    "bridge": {"networks_dir": "networks_dir", "namespace": "network_namespace",
               "uplink": "network_uplink", "floating_ip_pools": "floating_ip_pools"},
    "simulated": {"images": "simulated_images", "failures": "simulated_failures",
                  "delay_seconds": "simulated_delay_seconds"},
}


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message says which and why."""


@dataclass
class Config:
    data_dir: str = "./data"
    listen: str = "127.0.0.1:8080"
    # Which infrastructure drives compute, storage and network. Chosen explicitly:
    # "simulated" runs everything in process, with no real infrastructure.
    # compute_backend/storage_backend/network_backend override it per area.
    backend: str = ""
    compute_backend: str = ""
    storage_backend: str = ""
    network_backend: str = ""
    libvirt_uri: str = "qemu:///system"
    # Several hypervisor hosts: their libvirt URIs (e.g. qemu+ssh://root@node2/system),
    # instead of libvirt_uri. A host on another machine gets the images and
    # files its guests need through libvirt (nothing shared with the frontend).
    libvirt_hosts: list[str] = field(default_factory=list)
    # Availability zones: name -> the hosts' libvirt URIs ({}: one zone, "default", of all).
    availability_zones: dict[str, list[str]] = field(default_factory=dict)
    accelerator: str = "auto"  # auto (probe KVM, else TCG), kvm or tcg
    # How many vCPUs of running guests a host takes per core it has (placement).
    cpu_ratio: float = 16.0
    images_dir: str = ""  # default: data_dir/images
    instances_dir: str = ""  # default: data_dir/instances
    shutdown_timeout: int = 60  # seconds a graceful stop may take before power-off
    # How guests reach volumes: "local" (the storage pool is on this host) or
    # "iscsi" (over the network, as from another hypervisor host).
    volume_access: str = "local"
    reconcile_seconds: int = 10  # how often stored states are checked against the real ones
    # How long a front end's process stays "alive" after its last sign (its jobs are
    # then taken over by another) and the reconciler's election outlives its holder.
    lease_seconds: float = 15.0
    # How long a request waits for the infrastructure's part of a create (a job)
    # before it answers and leaves the entity `waiting`.
    job_wait_seconds: float = 10.0
    job_wait_max_seconds: float = 300.0  # the longest a client's `Prefer: wait=N` holds one
    # What to do with guests, volumes and bridges the store does not know
    # (report, clean or adopt), once seen for orphan_grace_seconds.
    orphans: str = "report"
    orphan_grace_seconds: int = 600
    volumes_dir: str = ""  # file pool; default: data_dir/volumes
    lvm_volume_group: str = ""  # the volume group of the lvm storage backend
    storage_capacity_gib: int = 0  # 0: the size of the volumes directory's file system
    quarantine_seconds: int = 7 * 24 * 3600  # how long deleted volumes can be restored
    iscsi_exporter: str = "auto"  # auto (LIO if the kernel has it, else tgt), lio, tgt, none
    iscsi_portal: str = "127.0.0.1:3260"
    iscsi_iqn_prefix: str = ""  # default: iqn.2026-11.local.<hostname>.pool-<digest of the pool>
    iscsi_initiators: str = "ALL"  # initiator addresses tgt admits (CHAP still applies)
    iscsi_tgt_control_port: int = 0  # which tgtd tgtadm drives (tgtd -C N)
    networks_dir: str = ""  # DHCP configuration and leases; default: data_dir/networks
    # The network namespace bridges, DHCP servers and NAT rules live in ("": the host's).
    network_namespace: str = ""
    network_uplink: str = ""  # the host interface VLANs are tagged on and public networks use
    # Floating IP pools: name -> the CIDR of public addresses (on the uplink's
    # network) that IP reservations take, e.g. {public = "192.0.2.128/26"}.
    floating_ip_pools: dict[str, str] = field(default_factory=dict)
    # The rules of a compute in no security group (occi.securitygroup.rules' form).
    security_default_rules: list[dict[str, Any]] = field(default_factory=lambda: [
        {"type": "inbound", "protocol": "tcp", "port": "22", "range": "0.0.0.0/0"},
        {"type": "inbound", "protocol": "icmp", "range": "0.0.0.0/0"},
    ])
    # Marketplace: CAs (and CRLs) endorsers' certificates must chain to, the
    # site's policy on which images it publishes, and HEPiX image lists to follow.
    marketplace_ca_dir: str = ""  # default: data_dir/marketplace-ca
    marketplace_policy: dict[str, Any] = field(default_factory=dict)
    image_lists: list[dict[str, Any]] = field(default_factory=list)  # [{url = "…"}]
    database_url: str = ""  # default: SQLite file in data_dir
    # Where the DMTF CIMI interface is served ("/api/" for SixSq's clients).
    cimi_path: str = "/cimi/"
    # Scheme prefix of this site's own categories (templates, backend tags).
    site_scheme: str = ""
    # Authentication: "none" (one anonymous operator), or the credentials
    # accepted, separated by commas: basic, oidc, x509.
    auth: str = "none"
    # Users of HTTP basic besides the store's: name -> password hash (tenant
    # "default"), or name -> {password_hash, tenants = [...], admin = bool}.
    users: dict[str, Any] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)  # operators: user names, subjects, DNs
    oidc_issuer: str = ""  # e.g. https://aai.egi.eu/auth/realms/egi
    oidc_audience: str = ""  # the audience tokens must name (this service's client id)
    oidc_jwks: str = ""  # the issuer's keys: a JWKS file, or its jwks_uri
    oidc_user_claim: str = "sub"
    # Claims whose values (groups, entitlements) map to tenants through oidc_tenants.
    oidc_tenant_claims: list[str] = field(
        default_factory=lambda: ["eduperson_entitlement", "entitlements", "groups"])
    oidc_tenants: dict[str, str] = field(default_factory=dict)  # claim value -> tenant
    # X.509: certificates checked by a front proxy, which passes the subject DN and
    # the VOMS FQANs in these headers; believed only from trusted_proxies.
    x509_dn_header: str = ""  # e.g. X-SSL-Client-S-DN
    x509_fqans_header: str = ""  # e.g. X-VOMS-FQANs
    trusted_proxies: list[str] = field(default_factory=list)  # addresses or CIDRs
    x509_vos: dict[str, str] = field(default_factory=dict)  # VO -> tenant
    # Or TLS ends here: the service's certificate and key, and the CAs client
    # certificates must chain to (client certificates are then optional).
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Per-tenant limits: {default = {cores = 16, ...}, "vo.example.org" = {...}}.
    quotas: dict[str, dict[str, float]] = field(default_factory=dict)
    # Request rate limits, e.g. "60/minute": per address for requests without
    # valid credentials, per user for the others ("": no limit).
    rate_limit_anonymous: str = ""
    rate_limit_authenticated: str = ""
    # The site as the federation knows it (GOCDB), for accounting and GLUE.
    site_name: str = ""
    endpoint_url: str = ""  # the public URL of this service (default: from listen)
    workers: int = 0  # 0: chosen from the number of CPUs
    threads: int = 4
    max_body_bytes: int = 4 * 1024 * 1024
    # GET answers each worker keeps while nothing they show changes (0: none).
    answer_cache_bytes: int = 16 * 1024 * 1024
    max_header_bytes: int = 128 * 1024  # one header line (text/occi carries user data in one)
    max_page_size: int = 1000
    default_page_size: int = 1000  # a collection without page or number: its first page
    max_entities_per_request: int = 100
    default_flavour: str = "small"
    flavours: list[dict[str, Any]] = field(default_factory=list)  # empty: the CRTP set
    simulated_images: list[dict[str, Any]] = field(default_factory=lambda: [
        {"term": "debian-12", "title": "Debian 12 (simulated image)", "os": "linux",
         "size_gib": 2.0},
        {"term": "alpine-3", "title": "Alpine Linux 3 (simulated image)", "os": "linux",
         "size_gib": 0.5},
    ])
    # Operations the simulated backend fails on purpose, e.g. ["compute.create"].
    simulated_failures: list[str] = field(default_factory=list)
    simulated_delay_seconds: float = 0.0  # how long each simulated operation takes
    log_level: str = "info"
    log_format: str = "text"  # or "json": one object per line, with the request id

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'occi.sqlite3'}"

    @property
    def effective_site_scheme(self) -> str:
        scheme = self.site_scheme or f"http://{socket.gethostname()}/occi/"
        return scheme if scheme.endswith("/") else scheme + "/"

    def backend_for(self, area: str) -> str:
        return getattr(self, f"{area}_backend") or self.backend

    def _directory(self, setting: str, default: str) -> Path:
        """A configured directory, or one of that name in the data directory."""
        return Path(setting).expanduser().resolve() if setting else self.data_path / default

    @property
    def images_path(self) -> Path:
        return self._directory(self.images_dir, "images")

    @property
    def effective_iqn_prefix(self) -> str:
        """Distinct per pool, so that a pool's repair never touches another's targets."""
        if self.iscsi_iqn_prefix:
            return self.iscsi_iqn_prefix
        digest = hashlib.sha256(str(self.volumes_path).encode()).hexdigest()[:8]
        host = re.sub(r"[^a-z0-9.-]", "-", socket.gethostname().lower())
        return f"iqn.2026-11.local.{host}.pool-{digest}"

    @property
    def volumes_path(self) -> Path:
        return self._directory(self.volumes_dir, "volumes")

    @property
    def marketplace_ca_path(self) -> Path:
        return self._directory(self.marketplace_ca_dir, "marketplace-ca")

    @property
    def networks_path(self) -> Path:
        return self._directory(self.networks_dir, "networks")

    @property
    def instances_path(self) -> Path:
        return self._directory(self.instances_dir, "instances")

    @property
    def auth_methods(self) -> tuple[str, ...]:
        """The enabled credentials ("none": no authentication at all)."""
        methods = tuple(m.strip() for m in self.auth.split(",") if m.strip())
        return () if methods == ("none",) else methods

    @property
    def effective_site_name(self) -> str:
        return self.site_name or socket.gethostname()

    @property
    def effective_endpoint_url(self) -> str:
        if self.endpoint_url:
            return self.endpoint_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{self.listen}"

    @property
    def effective_workers(self) -> int:
        return self.workers or min(2 * (os.cpu_count() or 1) + 1, 8)

    def validate(self) -> Config:
        for area, choices in BACKENDS.items():
            chosen = self.backend_for(area)
            if not chosen:
                raise ConfigError(
                    f"no {area} backend chosen: set backend (or {area}_backend) in the config "
                    f"file, or OCCI_BACKEND (one of: {', '.join(choices)})")
            if chosen not in choices:
                raise ConfigError(f"unknown {area} backend {chosen!r}; choose one of "
                                  f"{', '.join(choices)}")
        if self.backend_for("storage") == "lvm" and not self.lvm_volume_group:
            raise ConfigError("storage_backend = lvm needs lvm_volume_group (an existing "
                              "volume group, e.g. one made with vgcreate)")
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, "
                                  f"not {value!r}")
        if not CIMI_PATH.fullmatch(self.cimi_path) or self.cimi_path.strip("/") in RESERVED_TOP:
            raise ConfigError(f"cimi_path {self.cimi_path!r} must be a path of one segment "
                              "that OCCI does not use, such as /cimi/")
        if self.network_uplink and not INTERFACE_NAME.fullmatch(self.network_uplink):
            raise ConfigError(f"network_uplink {self.network_uplink!r} is not a Linux interface "
                              "name (1-15 letters, digits, '.', '_', '-')")
        if self.network_namespace and not NAMESPACE_NAME.fullmatch(self.network_namespace):
            raise ConfigError(f"network_namespace {self.network_namespace!r} is not a network "
                              "namespace name (letters, digits, '.', '_', '-')")
        if not self.cpu_ratio > 0:
            raise ConfigError(f"cpu_ratio must be a positive number (vCPUs per host core), "
                              f"not {self.cpu_ratio!r}")
        for zone, uris in self.availability_zones.items():
            if not ZONE_NAME.fullmatch(zone):
                raise ConfigError(f"availability_zones: {zone!r} is not a zone name (letters, "
                                  "digits, '.', '_', '-')")
            unknown = set(uris) - set(self.libvirt_hosts or [self.libvirt_uri])
            if not uris or unknown:
                raise ConfigError(f"availability_zones.{zone} must list hosts of libvirt_hosts"
                                  + (f"; not {', '.join(sorted(unknown))}" if unknown else ""))
        for pool, cidr in self.floating_ip_pools.items():
            if not ZONE_NAME.fullmatch(pool):
                raise ConfigError(f"floating_ip_pools: {pool!r} is not a pool name (letters, "
                                  "digits, '.', '_', '-')")
            try:
                ipaddress.IPv4Network(str(cidr))
            except ValueError:
                raise ConfigError(f"floating_ip_pools.{pool} must be an IPv4 CIDR such as "
                                  f"192.0.2.128/26, not {cidr!r}") from None
        try:
            parse_rules(self.security_default_rules)
        except ValueError as exc:
            raise ConfigError(f"security_default_rules: {exc}") from None
        unknown = set(self.marketplace_policy) - set(POLICY_KEYS)
        if unknown:
            raise ConfigError(f"marketplace_policy has unknown keys {', '.join(sorted(unknown))}"
                              f"; known: {', '.join(POLICY_KEYS)}")
        for image_list in self.image_lists:
            if not isinstance(image_list, dict) or not str(image_list.get("url", "")):
                raise ConfigError("each of image_lists needs a url (https://…, file://… or a "
                                  "path)")
        self._validate_identity()
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"listen must be HOST:PORT, not {self.listen!r}")
        return self


    def _validate_identity(self) -> None:
        methods = self.auth_methods
        unknown = set(methods) - set(AUTH_METHODS)
        if unknown or not self.auth.strip() or ("none" in methods):
            raise ConfigError(f"auth must be none, or one or more of {', '.join(AUTH_METHODS)} "
                              f"separated by commas, not {self.auth!r}")
        if "oidc" in methods and not (self.oidc_issuer and self.oidc_audience
                                      and self.oidc_jwks):
            raise ConfigError("auth = oidc needs oidc_issuer, oidc_audience and oidc_jwks (a "
                              "JWKS file or the issuer's jwks_uri)")
        if "x509" in methods and not ((self.x509_dn_header and self.trusted_proxies)
                                      or self.tls_client_ca):
            raise ConfigError("auth = x509 needs a front proxy (x509_dn_header and "
                              "trusted_proxies) or TLS here (tls_cert, tls_key, tls_client_ca)")
        if bool(self.tls_cert) != bool(self.tls_key) or (self.tls_client_ca
                                                          and not self.tls_cert):
            raise ConfigError("TLS needs both tls_cert and tls_key (tls_client_ca adds "
                              "client certificates)")
        for network in self.trusted_proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"trusted_proxies: {network!r} is not an address or "
                                  "CIDR") from None
        for tenant, limits in self.quotas.items():
            if not isinstance(limits, dict):
                raise ConfigError(f"quotas.{tenant} must be a table of limits")
            for name, limit in limits.items():
                if name not in QUOTAS:
                    raise ConfigError(f"quotas.{tenant}: unknown quota {name!r}; known: "
                                      f"{', '.join(QUOTAS)}")
                if isinstance(limit, bool) or not isinstance(limit, int | float):
                    raise ConfigError(f"quotas.{tenant}.{name} must be a number (negative: "
                                      "unlimited)")
        if self.default_page_size < 0:
            raise ConfigError("default_page_size must be 0 (whole collections) or more")
        if not 1024 <= self.max_header_bytes <= 8 * 1024 * 1024:
            raise ConfigError("max_header_bytes must be from 1024 to 8388608")
        if self.answer_cache_bytes < 0:
            raise ConfigError("answer_cache_bytes must be 0 (none kept) or more")
        if self.max_entities_per_request < 1:
            raise ConfigError("max_entities_per_request must be at least 1")
        for setting in ("rate_limit_anonymous", "rate_limit_authenticated"):
            value = getattr(self, setting)
            if value and not RATE_LIMIT.fullmatch(value):
                raise ConfigError(f"{setting} must be COUNT/second|minute|hour|day (e.g. "
                                  f"60/minute), not {value!r}")


def load_config(path: str | None = None, environ: dict[str, str] | None = None,
                **overrides: Any) -> Config:
    """Defaults < TOML file < OCCI_* environment < explicit overrides (command line)."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    if path:
        try:
            values.update(_flattened(tomllib.loads(Path(path).read_text()), path))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
    known = {f.name: f for f in fields(Config)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown config keys in {path}: {', '.join(sorted(unknown))}")
    for name, spec in known.items():
        raw = environ.get(f"OCCI_{name.upper()}")
        if raw is not None:
            values[name] = _from_env(name, raw, spec.type)
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = Config(**values)
    for name, spec in known.items():
        _check_type(name, getattr(config, name), spec.type)
    return config


def _flattened(document: dict[str, Any], path: str) -> dict[str, Any]:
    """The file's values as flat keys: each driver section's keys become the
    flat keys SECTIONS names; a key given both ways is refused."""
    values = {k: v for k, v in document.items() if k not in SECTIONS}
    for section, keys in SECTIONS.items():
        given = document.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise ConfigError(f"{section} in {path} is a section: write [{section}] and its "
                              f"keys ({', '.join(keys)})")
        for key, value in given.items():
            if key not in keys:
                raise ConfigError(f"unknown key {key} in [{section}] of {path}; known: "
                                  f"{', '.join(keys)}")
            flat = keys[key]
            if flat in values:
                raise ConfigError(f"{path} sets {flat} twice: as [{section}] {key} and "
                                  "elsewhere")
            values[flat] = value
    return values


def _from_env(name: str, raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith(("list", "dict")):
            return json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"OCCI_{name.upper()}: {exc}") from None
    return raw


def _check_type(name: str, value: Any, annotation: Any) -> None:
    expected: Any = {"str": str, "int": int, "float": (int, float)}.get(str(annotation))
    if str(annotation).startswith("list"):
        expected = list
    elif str(annotation).startswith("dict"):
        expected = dict
    if expected is not None and (not isinstance(value, expected) or isinstance(value, bool)):
        wanted = "number" if expected == (int, float) else expected.__name__
        raise ConfigError(f"config key {name} must be a {wanted}, got {value!r}")
