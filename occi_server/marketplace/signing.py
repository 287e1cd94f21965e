"""Signed image metadata: an endorser signs the canonical JSON of an entry
with the key of an X.509 certificate; the site accepts it only if the
certificate chains to one of the CAs in its CA directory, none of them has
revoked it (CRLs in the same directory), and the signature matches.
All cryptography is the `cryptography` library's.

A signed document:

    {"metadata": {...entry...},
     "signature": {"algorithm": "sha256", "value": "<base64>",
                   "certificates": ["<endorser PEM>", "<intermediate PEM>", ...]}}
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from occi_server.errors import BadRequest


def canonical(metadata: dict[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no insignificant white space."""
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def _sign_bytes(key: Any, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise BadRequest("the endorser's key must be RSA, EC or Ed25519")


def _verify_bytes(public_key: Any, signature: bytes, data: bytes) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature, data)
    else:
        raise InvalidSignature


def sign(metadata: dict[str, Any], key_pem: bytes, certificate_pems: list[bytes]) -> dict:
    """A signed document for `metadata`, by the key of the first certificate."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    certificate = x509.load_pem_x509_certificate(certificate_pems[0])
    metadata = {**metadata, "endorser": {**metadata.get("endorser", {}),
                                         "subject": certificate.subject.rfc4514_string()}}
    return {"metadata": metadata, "signature": {
        "algorithm": "sha256",
        "value": base64.b64encode(_sign_bytes(key, canonical(metadata))).decode(),
        "certificates": [pem.decode() for pem in certificate_pems]}}


class TrustStore:
    """The CA certificates and CRLs in a directory (*.pem, *.crt, *.crl)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.anchors: list[x509.Certificate] = []
        self.crls: list[x509.CertificateRevocationList] = []
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                self._load(path)

    def _load(self, path: Path) -> None:
        data = path.read_bytes()
        if b"BEGIN X509 CRL" in data:
            self.crls.append(x509.load_pem_x509_crl(data))
        elif b"BEGIN CERTIFICATE" in data:
            self.anchors.extend(x509.load_pem_x509_certificates(data))

    def chain(self, certificates: list[x509.Certificate], now: datetime) -> None:
        """Check that certificates[0] chains to an anchor: each link signed by
        the next, each valid now, issuers being CAs, nothing revoked."""
        if not self.anchors:
            raise BadRequest("this site trusts no endorser yet (its CA directory "
                             f"{self.directory} has no certificates)")
        current, rest = certificates[0], certificates[1:]
        for _ in range(8):  # a longer chain is not worth following
            self._check_time(current, now)
            self._check_revocation(current)
            anchor = self._issuer_of(current, self.anchors)
            if anchor is not None:
                self._check_time(anchor, now)
                return
            issuer = self._issuer_of(current, rest)
            if issuer is None:
                raise BadRequest(f"the endorser {certificates[0].subject.rfc4514_string()} is "
                                 "unknown here: its certificate does not chain to a CA this "
                                 "site trusts")
            current = issuer
        raise BadRequest("the endorser's certificate chain is too long")

    @staticmethod
    def _issuer_of(certificate: x509.Certificate,
                   candidates: list[x509.Certificate]) -> x509.Certificate | None:
        for candidate in candidates:
            if candidate.subject != certificate.issuer:
                continue
            try:
                constraints = candidate.extensions.get_extension_for_class(
                    x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                continue
            if not constraints.ca:
                continue
            try:
                certificate.verify_directly_issued_by(candidate)
            except (InvalidSignature, ValueError, TypeError):
                continue
            return candidate
        return None

    @staticmethod
    def _check_time(certificate: x509.Certificate, now: datetime) -> None:
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise BadRequest(f"the certificate {certificate.subject.rfc4514_string()} is not "
                             f"valid now (valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
                             f"{certificate.not_valid_after_utc:%Y-%m-%d})")

    def revoked(self, certificate: x509.Certificate) -> bool:
        """Whether a CRL its trusted CA signed lists the certificate."""
        for crl in self.crls:
            if crl.issuer != certificate.issuer:
                continue
            issuer = next((a for a in self.anchors if a.subject == crl.issuer), None)
            if issuer is None or not crl.is_signature_valid(issuer.public_key()):
                continue  # a CRL nobody trusted signed says nothing
            if crl.get_revoked_certificate_by_serial_number(certificate.serial_number):
                return True
        return False

    def _check_revocation(self, certificate: x509.Certificate) -> None:
        if self.revoked(certificate):
            raise BadRequest(f"the certificate {certificate.subject.rfc4514_string()} has "
                             "been revoked by its CA")


def endorser_certificate(document: dict[str, Any]) -> x509.Certificate | None:
    """The certificate a stored (verified) entry was signed with."""
    try:
        return x509.load_pem_x509_certificate(
            document["signature"]["certificates"][0].encode())
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None


def verify(document: Any, trust: TrustStore, now: datetime | None = None) -> dict[str, Any]:
    """The metadata of a signed document whose signature and endorser this site
    trusts; BadRequest saying why otherwise."""
    now = now or datetime.now(UTC)
    if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict) \
            or not isinstance(document.get("signature"), dict):
        raise BadRequest("a signed entry is a JSON object with 'metadata' and 'signature'")
    metadata, signature = document["metadata"], document["signature"]
    try:
        certificates = [x509.load_pem_x509_certificate(pem.encode())
                        for pem in signature["certificates"]]
        value = base64.b64decode(signature["value"], validate=True)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        raise BadRequest("the signature needs 'value' (base64) and 'certificates' (PEM, the "
                         "endorser's first)") from None
    if not certificates or signature.get("algorithm") != "sha256":
        raise BadRequest("the signature needs the endorser's certificate and algorithm sha256")
    trust.chain(certificates, now)
    try:
        _verify_bytes(certificates[0].public_key(), value, canonical(metadata))
    except InvalidSignature:
        raise BadRequest("the signature does not match the metadata: it was changed after "
                         "signing, or signed with another key") from None
    subject = certificates[0].subject.rfc4514_string()
    endorser = metadata.get("endorser")
    if not isinstance(endorser, dict) or endorser.get("subject") != subject:
        raise BadRequest(f"the metadata names endorser {endorser!r}, but the certificate is "
                         f"{subject}")
    return metadata
