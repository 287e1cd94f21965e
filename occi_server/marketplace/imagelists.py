"""HEPiX image lists (as EGI sites subscribe to them): S/MIME-signed JSON
naming images by URL and SHA-512. A sync verifies each list's signature
against the marketplace CAs (OpenSSL's S/MIME verification; `cryptography`
signs S/MIME but does not verify it), checks that the signer is the list's
endorser, downloads new images into the image catalogue with their checksum
verified, and removes images that left the list or whose list expired.

The catalogue only ever lists downloaded, verified files: a launch never
waits for, or depends on, a list's site."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import requests
from cryptography import x509

from occi_server.marketplace.entries import identifier, parse_time
from occi_server.marketplace.signing import TrustStore

log = logging.getLogger("occi_server.imagelists")
_ARCHITECTURES = {"x86_64": "x64", "amd64": "x64", "x64": "x64", "i386": "x86", "i686": "x86",
                  "x86": "x86"}
Opener = Callable[[str], Any]  # URL -> a context manager giving a binary stream


@contextmanager
def open_url(url: str) -> Iterator[IO[bytes]]:
    """A list or an image: https:// or http:// (requests), file:// or a local path."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("http", "https"):
        with requests.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            response.raw.decode_content = True
            yield response.raw
    else:
        path = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else url
        with open(path, "rb") as handle:
            yield handle


def openssl_subject(name: x509.Name) -> str:
    """A name as OpenSSL prints it and image lists write it: /O=…/CN=…"""
    return "".join(f"/{part}" for part in reversed(name.rfc4514_string().split(",")))


@dataclass
class SyncReport:
    published: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # reasons


class ImageListSync:
    def __init__(self, trust_dir: Path, images_dir: Path, opener: Opener = open_url) -> None:
        self.trust_dir = trust_dir
        self.images_dir = images_dir
        self.opener = opener

    def sync(self, lists: list[dict[str, Any]], now: datetime | None = None) -> SyncReport:
        now = now or datetime.now(UTC)
        report = SyncReport()
        self.images_dir.mkdir(parents=True, exist_ok=True)
        for subscription in lists:
            url = str(subscription["url"])
            try:
                images, endorsement = self._read_list(url, now)
            except ValueError as exc:
                report.refused.append(f"image list {url}: {exc}")
                log.warning("image list %s refused: %s", url, exc)
                if "expired" in str(exc):
                    self._remove_except(url, set(), report)
                continue
            wanted = set()
            for image in images:
                term = self._sync_image(url, image, endorsement, report)
                if term:
                    wanted.add(term)
            self._remove_except(url, wanted, report)
        return report

    # ------------------------------------------------------------ the list
    def _read_list(self, url: str, now: datetime) -> tuple[list[dict], dict[str, str]]:
        with self.opener(url) as stream:
            signed = stream.read(16 * 1024 * 1024)
        content, signer = self._verify(signed)
        try:
            document = json.loads(content)["hv:imagelist"]
        except (ValueError, KeyError, TypeError):
            raise ValueError("the signed content is not a HEPiX image list") from None
        expires = parse_time(document.get("dc:date:expires"), "dc:date:expires")
        if expires <= now:
            raise ValueError(f"the list expired on {expires.isoformat()}")
        claimed = str(document.get("hv:endorser", {}).get("hv:x509", {}).get("hv:dn", ""))
        if claimed != openssl_subject(signer.subject):
            raise ValueError(f"the list names endorser {claimed!r} but was signed by "
                             f"{openssl_subject(signer.subject)}")
        images = [entry["hv:image"] for entry in document.get("hv:images", [])
                  if isinstance(entry, dict) and isinstance(entry.get("hv:image"), dict)]
        return images, {"endorser": signer.subject.rfc4514_string(),
                        "valid_until": expires.isoformat(), "image_list": url}

    def _verify(self, signed: bytes) -> tuple[bytes, x509.Certificate]:
        trust = TrustStore(self.trust_dir)
        if not trust.anchors:
            raise ValueError(f"no CA to check it against in {self.trust_dir}")
        with tempfile.TemporaryDirectory() as scratch:
            bundle, signer = Path(scratch) / "trust.pem", Path(scratch) / "signer.pem"
            bundle.write_bytes(b"".join(
                path.read_bytes() for path in sorted(self.trust_dir.iterdir())
                if path.is_file()))
            command = ["openssl", "smime", "-verify", "-purpose", "any", "-CAfile", str(bundle),
                       "-signer", str(signer)]
            if trust.crls:
                command.append("-crl_check")
            result = subprocess.run(command, input=signed, capture_output=True, timeout=60)
            if result.returncode != 0:
                reason = result.stderr.decode(errors="replace").strip().splitlines()
                raise ValueError("its signature does not verify against the marketplace CAs"
                                 f" ({reason[-1] if reason else 'openssl failed'})")
            return result.stdout, x509.load_pem_x509_certificate(signer.read_bytes())

    # ------------------------------------------------------------ the images
    def _sync_image(self, url: str, image: dict[str, Any], endorsement: dict[str, str],
                    report: SyncReport) -> str | None:
        sha512 = str(image.get("sl:checksum:sha512", "")).lower()
        source = str(image.get("hv:uri", ""))
        title = str(image.get("dc:title") or image.get("dc:identifier") or source)
        if not re.fullmatch(r"[0-9a-f]{128}", sha512) or not source:
            report.refused.append(f"{title}: no hv:uri or sl:checksum:sha512 in the list")
            return None
        existing = self._by_sha512(sha512)
        if existing is not None:
            term, metadata = existing
            if metadata.get("endorsement", {}).get("image_list") == url:
                self._describe(term, metadata["disk"], metadata["format"], metadata["sha256"],
                               sha512, image, endorsement)
                report.kept.append(term)
                return term
        try:
            disk, sha256, disk_format = self._download(source, sha512, image.get("hv:size"))
        except (OSError, ValueError, requests.RequestException) as exc:
            report.refused.append(f"{title}: {exc}")
            log.warning("image %s from %s not published: %s", title, url, exc)
            return None
        term = identifier(sha256)
        final = self.images_dir / f"{term}.{disk_format}"
        disk.replace(final)
        self._describe(term, final.name, disk_format, sha256, sha512, image, endorsement)
        report.published.append(term)
        return term

    def _download(self, source: str, sha512: str, size: Any) -> tuple[Path, str, str]:
        """The image in a partial file, its SHA-512 checked; (file, sha256, format)."""
        partial = self.images_dir / f".download-{sha512[:16]}"
        digests = hashlib.sha256(), hashlib.sha512()
        try:
            with self.opener(source) as stream, partial.open("wb") as target:
                head = b""
                for block in iter(lambda: stream.read(1 << 20), b""):
                    head = head or block[:4]
                    for digest in digests:
                        digest.update(block)
                    target.write(block)
            if digests[1].hexdigest() != sha512:
                raise ValueError(f"checksum mismatch: the SHA-512 of {source} is "
                                 f"{digests[1].hexdigest()[:16]}…, the list says "
                                 f"{sha512[:16]}…")
            if isinstance(size, int) and partial.stat().st_size != size:
                raise ValueError(f"size mismatch: {partial.stat().st_size} bytes, the list "
                                 f"says {size}")
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return partial, digests[0].hexdigest(), "qcow2" if head == b"QFI\xfb" else "raw"

    def _describe(self, term: str, disk: str, disk_format: str, sha256: str, sha512: str,
                  image: dict[str, Any], endorsement: dict[str, str]) -> None:
        metadata = {
            "title": str(image.get("dc:title") or term), "disk": disk, "format": disk_format,
            "sha256": sha256, "sha512": sha512,
            "description": str(image.get("dc:description", "")),
            "version": str(image.get("hv:version", "")),
            "os": str(image.get("sl:os", "linux")).lower() or "linux",
            "architecture": _ARCHITECTURES.get(str(image.get("sl:arch", "x86_64")).lower(),
                                               "x64"),
            "endorsement": endorsement,
        }
        target = self.images_dir / f"{term}.json"
        partial = target.with_name(f".{term}.json.new")
        partial.write_text(json.dumps(metadata, indent=2))
        partial.replace(target)

    def _catalogue(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for path in sorted(self.images_dir.glob("*.json")):
            try:
                yield path.stem, json.loads(path.read_text())
            except (OSError, ValueError):
                continue

    def _by_sha512(self, sha512: str) -> tuple[str, dict[str, Any]] | None:
        return next(((term, metadata) for term, metadata in self._catalogue()
                     if metadata.get("sha512") == sha512), None)

    def _remove_except(self, url: str, wanted: set[str], report: SyncReport) -> None:
        """Unpublish the images of `url` that the list no longer names. Their disk
        files stay: guests booted from them read them through their overlays."""
        for term, metadata in list(self._catalogue()):
            if metadata.get("endorsement", {}).get("image_list") != url or term in wanted:
                continue
            (self.images_dir / f"{term}.json").unlink(missing_ok=True)
            report.removed.append(term)

