"""The marketplace: endorsed, signed metadata of images, the site's policy on
which images it publishes as os_tpl, and the entries' listing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from occi_server.errors import BadRequest, NotFound
from occi_server.images import Image
from occi_server.marketplace.entries import Entry, entry_from_metadata, identifier, parse_time
from occi_server.marketplace.signing import TrustStore, endorser_certificate, verify
from occi_server.store import Repository, Store

__all__ = ["Endorser", "Entry", "Marketplace", "Policy", "identifier"]
SORT_KEYS = ("created", "title", "identifier", "endorser", "kind", "status", "valid_until")
STATUSES = ("valid", "expired", "deprecated")


@dataclass(frozen=True)
class Policy:
    """Which images the site publishes as os_tpl (lists of certificate subjects,
    marketplace identifiers and checksums)."""

    endorsers_allowed: tuple[str, ...] = ()  # empty: every endorser the CAs vouch for
    endorsers_denied: tuple[str, ...] = ()
    images_denied: tuple[str, ...] = ()
    checksums_denied: tuple[str, ...] = ()
    require_endorsement: bool = False  # publish only images a valid entry endorses

    def trusts_subject(self, endorser: str) -> bool:
        return endorser not in self.endorsers_denied and (
            not self.endorsers_allowed or endorser in self.endorsers_allowed)


@dataclass(frozen=True)
class Endorser:
    """Someone whose signed entries the site keeps, as the marketplace's pages show them."""

    subject: str
    name: str
    email: str
    entries: int
    valid_from: datetime | None  # of the certificate the latest entry was signed with
    valid_until: datetime | None
    revoked: bool
    trusted: bool  # the site's policy publishes their images

    def certificate_status(self, now: datetime | None = None) -> str:
        if self.revoked:
            return "revoked"
        if self.valid_until is None or self.valid_from is None:
            return "unknown"
        now = now or datetime.now(UTC)
        return "valid" if self.valid_from <= now <= self.valid_until else "expired"


class Marketplace:
    def __init__(self, store: Store, trust_dir: Path, policy: Policy) -> None:
        self.store = store
        self.trust_dir = trust_dir
        self.policy = policy

    def upload(self, document: Any, now: datetime | None = None) -> tuple[Entry, bool]:
        """Verify and keep a signed entry; (entry, whether it is new or newer)."""
        metadata = verify(document, TrustStore(self.trust_dir), now)
        entry = entry_from_metadata(metadata, now)
        with self.store.transaction(write=True) as repo:
            stored = repo.save_endorsement(entry.identifier, entry.endorser, entry.created,
                                           document)
        return entry, stored

    def all_entries(self, repo: Repository | None = None) -> list[Entry]:
        """Every stored entry, read in `repo`'s transaction (or one of its own)."""
        if repo is None:
            with self.store.transaction(write=False) as own:
                return self.all_entries(own)
        return [_entry(document, deprecated) for document, deprecated in repo.endorsements()]

    def entries(self, *, text: str = "", status: str = "", endorser: str = "", kind: str = "",
                sort: str = "-created", limit: int = 25, offset: int = 0,
                now: datetime | None = None) -> tuple[int, list[Entry]]:
        """Filtered, sorted and paged entries, and how many matched in all."""
        now = now or datetime.now(UTC)
        if status and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
        key = sort.lstrip("-")
        if key not in SORT_KEYS:
            raise BadRequest(f"sort must be one of {', '.join(SORT_KEYS)} (- for descending)")
        if limit < 1 or limit > 1000 or offset < 0:
            raise BadRequest("limit must be 1-1000 and offset not negative")
        needle = text.lower()
        found = [e for e in self.all_entries()
                 if (not status or e.status(now) == status)
                 and (not endorser or endorser.lower() in e.endorser.lower())
                 and (not kind or e.kind == kind)
                 and (not needle or needle in " ".join(
                     (e.identifier, e.title, e.description, e.os, e.endorser,
                      e.endorser_name)).lower())]
        found.sort(key=lambda e: e.status(now) if key == "status" else str(getattr(e, key)),
                   reverse=sort.startswith("-"))
        return len(found), found[offset:offset + limit]

    def image(self, image_id: str) -> list[Entry]:
        with self.store.transaction(write=False) as repo:
            rows = repo.endorsements(image_id)
        if not rows:
            raise NotFound(f"no marketplace entry {image_id}")
        return [_entry(document, deprecated) for document, deprecated in rows]

    def endorsers(self) -> list[Endorser]:
        """Who endorsed the stored entries, with how many each, and the state of
        the certificate each signed their latest entry with (by subject)."""
        trust = TrustStore(self.trust_dir)
        with self.store.transaction(write=False) as repo:
            rows = repo.endorsements()
        latest: dict[str, tuple[Entry, dict[str, Any]]] = {}
        counts: dict[str, int] = {}
        for document, deprecated in rows:
            entry = _entry(document, deprecated)
            counts[entry.endorser] = counts.get(entry.endorser, 0) + 1
            if entry.endorser not in latest or latest[entry.endorser][0].created < entry.created:
                latest[entry.endorser] = (entry, document)
        found = []
        for subject, (entry, document) in sorted(latest.items()):
            certificate = endorser_certificate(document)
            found.append(Endorser(
                subject=subject, name=entry.endorser_name, email=entry.endorser_email,
                entries=counts[subject],
                valid_from=certificate.not_valid_before_utc if certificate else None,
                valid_until=certificate.not_valid_after_utc if certificate else None,
                revoked=bool(certificate and trust.revoked(certificate)),
                trusted=self.policy.trusts_subject(subject)))
        return found

    def deprecate(self, image_id: str) -> None:
        with self.store.transaction(write=True) as repo:
            if not repo.deprecate_image(image_id):
                raise NotFound(f"no marketplace entry {image_id}")

    # ------------------------------------------------------------ policy
    def publishable(self, images: Iterable[Image], entries: list[Entry], now: datetime
                    ) -> list[tuple[Image, dict[str, str]]]:
        """The images the policy lets the site publish, each with what vouches
        for its bytes (valid `entries` of trusted endorsers, or the signed image
        list it came from) as marketplace attributes ({} when nothing does)."""
        vouching: dict[str, list[Entry]] = {}
        for entry in entries:
            if entry.status(now) == "valid" and self.policy.trusts_subject(entry.endorser):
                vouching.setdefault(entry.checksums["sha256"], []).append(entry)
        published = []
        for image in images:
            sha256 = str(image.info.get("sha256", "")).lower()
            sha512 = str(image.info.get("sha512", "")).lower()
            if {sha256, sha512} & set(self.policy.checksums_denied):
                continue
            if sha256 and identifier(sha256) in self.policy.images_denied:
                continue
            endorsers = {e.endorser: e.valid_until for e in vouching.get(sha256, [])} \
                if sha256 else {}
            listed = image.info.get("endorsement")
            if listed and parse_time(listed["valid_until"], "valid_until") > now \
                    and self.policy.trusts_subject(listed["endorser"]):
                endorsers[listed["endorser"]] = parse_time(listed["valid_until"], "valid_until")
            if self.policy.require_endorsement and not endorsers:
                continue
            attributes = {}
            if endorsers:
                attributes = {"identifier": identifier(sha256) if sha256 else "",
                              "endorsers": ", ".join(sorted(endorsers)),
                              "valid_until": max(endorsers.values()).isoformat(),
                              "sha256": sha256}
                if listed:
                    attributes["image_list"] = str(listed.get("image_list", ""))
            published.append((image, attributes))
        return published


def next_change(images: Iterable[Image], entries: list[Entry], now: datetime
                ) -> datetime | None:
    """When what publishable() answers may next change by time alone: the
    first validity still to end (of an entry, or of an image list's endorsement)."""
    ends = [entry.valid_until for entry in entries if not entry.deprecated]
    ends += [parse_time(image.info["endorsement"]["valid_until"], "valid_until")
             for image in images if image.info.get("endorsement")]
    return min((end for end in ends if end > now), default=None)


def _entry(document: dict[str, Any], deprecated_here: bool) -> Entry:
    entry = entry_from_metadata(document["metadata"], fresh=False)
    if deprecated_here and not entry.deprecated:
        return Entry(**{**entry.__dict__, "deprecated": True})
    return entry
