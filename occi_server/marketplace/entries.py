"""Marketplace entries: endorsed metadata of machine and disk images.

An entry's identifier derives from the image's SHA-256 (so the same bytes
always get the same id, whoever endorses them); several endorsers may endorse
one image, each with an entry of their own."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from occi_server.errors import BadRequest

KINDS = ("machine", "disk")
_HEX = {"sha256": re.compile(r"[0-9a-f]{64}"), "sha512": re.compile(r"[0-9a-f]{128}")}
_TEXT = {"title": 200, "description": 4000, "os": 64, "os_version": 64, "architecture": 32,
         "location": 2048}


def identifier(sha256: str) -> str:
    """27 characters, lower case, starting with a letter (usable as an os_tpl term)."""
    digest = bytes.fromhex(sha256)
    return "m" + base64.b32encode(digest).decode().lower().rstrip("=")[:26]


def parse_time(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time, not {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    identifier: str
    endorser: str  # certificate subject (RFC 4514)
    endorser_name: str
    endorser_email: str
    created: datetime
    valid_until: datetime
    deprecated: bool
    kind: str
    title: str
    description: str
    os: str
    os_version: str
    architecture: str
    location: str
    size: int
    checksums: dict[str, str]

    def status(self, now: datetime | None = None) -> str:
        if self.deprecated:
            return "deprecated"
        return "expired" if self.valid_until <= (now or datetime.now(UTC)) else "valid"

    def summary(self, now: datetime | None = None) -> dict[str, Any]:
        """The JSON form the API and the web page show."""
        return {
            "identifier": self.identifier, "status": self.status(now), "kind": self.kind,
            "title": self.title, "description": self.description, "os": self.os,
            "os_version": self.os_version, "architecture": self.architecture,
            "location": self.location, "size": self.size, "checksums": self.checksums,
            "endorser": {"subject": self.endorser, "name": self.endorser_name,
                         "email": self.endorser_email},
            "created": self.created.isoformat(), "valid_until": self.valid_until.isoformat(),
            "deprecated": self.deprecated,
        }


def entry_from_metadata(metadata: dict[str, Any], now: datetime | None = None, *,
                        fresh: bool = True) -> Entry:
    """A verified entry's metadata, checked field by field; with `fresh`, expired
    ones are refused (an upload), without it they are read (stored entries)."""
    checksums = metadata.get("checksums")
    if not isinstance(checksums, dict) or "sha256" not in checksums:
        raise BadRequest("checksums must name at least the image's sha256")
    for name, value in checksums.items():
        if name not in _HEX or not isinstance(value, str) or not _HEX[name].fullmatch(value):
            raise BadRequest(f"checksum {name} must be one of sha256, sha512 in lower-case hex")
    derived = identifier(checksums["sha256"])
    if metadata.get("identifier", derived) != derived:
        raise BadRequest(f"identifier {metadata['identifier']!r} does not derive from the "
                         f"sha256 checksum (it is {derived})")
    kind = metadata.get("kind", "machine")
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    texts = {}
    for name, limit in _TEXT.items():
        value = metadata.get(name, "")
        if not isinstance(value, str) or len(value) > limit:
            raise BadRequest(f"{name} must be text of at most {limit} characters")
        texts[name] = value
    if not texts["title"]:
        raise BadRequest("title is required")
    size = metadata.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest("size must be a number of bytes")
    endorser = metadata.get("endorser") or {}
    created = parse_time(metadata.get("created"), "created")
    valid_until = parse_time(metadata.get("valid_until"), "valid_until")
    if fresh and valid_until <= (now or datetime.now(UTC)):
        raise BadRequest(f"the entry expired on {valid_until.isoformat()}")
    if valid_until <= created:
        raise BadRequest("valid_until must come after created")
    return Entry(
        identifier=derived, endorser=str(endorser.get("subject", "")),
        endorser_name=str(endorser.get("name", "")), endorser_email=str(endorser.get("email", "")),
        created=created, valid_until=valid_until, deprecated=bool(metadata.get("deprecated")),
        kind=kind, size=size, checksums=dict(checksums), **texts)


def checksums_of(path: Path) -> dict[str, str]:
    """SHA-256 and SHA-512 of a file, read once."""
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(block)
            sha512.update(block)
    return {"sha256": sha256.hexdigest(), "sha512": sha512.hexdigest()}


def new_metadata(image: Path, *, title: str, valid_days: int, now: datetime | None = None,
                 **fields: Any) -> dict[str, Any]:
    """Unsigned metadata for an image file: its checksums, size and identifier."""
    now = now or datetime.now(UTC)
    checksums = checksums_of(image)
    endorser = {k: fields.pop(f"endorser_{k}") for k in ("name", "email")
                if fields.get(f"endorser_{k}")}
    fields = {k: v for k, v in fields.items() if not k.startswith("endorser_") and v}
    return {"identifier": identifier(checksums["sha256"]), "checksums": checksums,
            "size": image.stat().st_size, "title": title, "endorser": endorser,
            "created": now.isoformat(),
            "valid_until": (now + timedelta(days=valid_days)).isoformat(),
            "deprecated": False, **fields}
