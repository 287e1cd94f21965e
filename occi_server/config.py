"""Configuration: built-in defaults, then a TOML file, then OCCI_<KEY> environment
variables (e.g. OCCI_BACKEND=simulated, OCCI_DATABASE_URL=postgresql+psycopg://…)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

INTERFACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
NAMESPACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
POLICY_KEYS = ("endorsers_allowed", "endorsers_denied", "images_denied", "checksums_denied",
               "require_endorsement")
# Settings that take one of a few words.
CHOICES = {"iscsi_exporter": ("auto", "lio", "tgt", "none"), "accelerator": ("auto", "kvm", "tcg"),
           "auth": ("none", "basic"), "volume_access": ("local", "iscsi"),
           "log_format": ("text", "json"), "orphans": ("report", "clean", "adopt")}
# The backends each area can use.
BACKENDS = {"compute": ("simulated", "libvirt"), "storage": ("simulated", "filepool", "lvm"),
            "network": ("simulated", "bridge")}


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
    accelerator: str = "auto"  # auto (probe KVM, else TCG), kvm or tcg
    images_dir: str = ""  # default: data_dir/images
    instances_dir: str = ""  # default: data_dir/instances
    shutdown_timeout: int = 60  # seconds a graceful stop may take before power-off
    # How guests reach volumes: "local" (the storage pool is on this host) or
    # "iscsi" (over the network, as from another hypervisor host).
    volume_access: str = "local"
    reconcile_seconds: int = 10  # how often stored states are checked against the real ones
    # How long a request waits for the infrastructure's part of a create (a job)
    # before it answers and leaves the entity `waiting`.
    job_wait_seconds: float = 10.0
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
    networks_dir: str = ""  # DHCP configuration and leases; default: data_dir/networks
    # The network namespace bridges, DHCP servers and NAT rules live in ("": the host's).
    network_namespace: str = ""
    network_uplink: str = ""  # the host interface VLANs are tagged on and public networks use
    # Marketplace: CAs (and CRLs) endorsers' certificates must chain to, the
    # site's policy on which images it publishes, and HEPiX image lists to follow.
    marketplace_ca_dir: str = ""  # default: data_dir/marketplace-ca
    marketplace_policy: dict[str, Any] = field(default_factory=dict)
    image_lists: list[dict[str, Any]] = field(default_factory=list)  # [{url = "…"}]
    database_url: str = ""  # default: SQLite file in data_dir
    # Scheme prefix of this site's own categories (templates, backend tags).
    site_scheme: str = ""
    auth: str = "none"  # "none" or "basic"
    users: dict[str, str] = field(default_factory=dict)  # name -> password hash
    workers: int = 0  # 0: chosen from the number of CPUs
    threads: int = 4
    max_body_bytes: int = 4 * 1024 * 1024
    max_page_size: int = 1000
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
        if self.network_uplink and not INTERFACE_NAME.fullmatch(self.network_uplink):
            raise ConfigError(f"network_uplink {self.network_uplink!r} is not a Linux interface "
                              "name (1-15 letters, digits, '.', '_', '-')")
        if self.network_namespace and not NAMESPACE_NAME.fullmatch(self.network_namespace):
            raise ConfigError(f"network_namespace {self.network_namespace!r} is not a network "
                              "namespace name (letters, digits, '.', '_', '-')")
        unknown = set(self.marketplace_policy) - set(POLICY_KEYS)
        if unknown:
            raise ConfigError(f"marketplace_policy has unknown keys {', '.join(sorted(unknown))}"
                              f"; known: {', '.join(POLICY_KEYS)}")
        for image_list in self.image_lists:
            if not isinstance(image_list, dict) or not str(image_list.get("url", "")):
                raise ConfigError("each of image_lists needs a url (https://…, file://… or a "
                                  "path)")
        if self.auth == "basic" and not self.users:
            raise ConfigError("auth = basic needs [users] with name = password hash "
                              "(make a hash with: occi-server hash-password)")
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"listen must be HOST:PORT, not {self.listen!r}")
        return self


def load_config(path: str | None = None, environ: dict[str, str] | None = None,
                **overrides: Any) -> Config:
    """Defaults < TOML file < OCCI_* environment < explicit overrides (command line)."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    if path:
        try:
            values.update(tomllib.loads(Path(path).read_text()))
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
