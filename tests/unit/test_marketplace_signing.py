"""Signed marketplace entries: what the site accepts, and why it refuses the rest."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from occi_server.errors import BadRequest
from occi_server.marketplace.entries import entry_from_metadata, identifier, new_metadata
from occi_server.marketplace.signing import TrustStore, sign, verify
from tests.support.pki import Identity, crl, issue


@pytest.fixture(scope="module")
def ca() -> Identity:
    return issue("Site CA", ca=True, days=365)


@pytest.fixture(scope="module")
def endorser(ca: Identity) -> Identity:
    return issue("Alice Endorser", ca)


@pytest.fixture
def trust(tmp_path: Path, ca: Identity) -> TrustStore:
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "site-ca.pem").write_bytes(ca.cert_pem)
    return TrustStore(tmp_path / "ca")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "debian.qcow2"
    path.write_bytes(b"the image's bytes" * 1000)
    return path


def signed(image: Path, signer: Identity, *chain: Identity, **fields) -> dict:
    metadata = new_metadata(image, title="Debian 12", valid_days=30, os="linux", **fields)
    return sign(metadata, signer.key_pem, [signer.cert_pem, *(c.cert_pem for c in chain)])


def test_a_valid_entry_is_accepted(image: Path, endorser: Identity, trust: TrustStore) -> None:
    document = signed(image, endorser, endorser_email="alice@example.org")
    entry = entry_from_metadata(verify(document, trust))
    assert entry.identifier == identifier(entry.checksums["sha256"])
    assert entry.identifier == signed(image, endorser)["metadata"]["identifier"]  # same bytes
    assert entry.endorser == "CN=Alice Endorser,O=occi-server tests"
    assert entry.endorser_email == "alice@example.org"
    assert entry.status() == "valid" and len(entry.identifier) == 27


@pytest.mark.parametrize(("change", "reason"), [
    (lambda m: m.update(title="Evil"), "does not match the metadata"),
    (lambda m: m["checksums"].update(sha256="0" * 64), "does not match the metadata"),
    (lambda m: m["endorser"].update(subject="CN=Bob"), "does not match the metadata"),
])
def test_tampered_metadata_is_refused(image: Path, endorser: Identity, trust: TrustStore,
                                      change, reason: str) -> None:
    document = copy.deepcopy(signed(image, endorser))
    change(document["metadata"])
    with pytest.raises(BadRequest, match=reason):
        verify(document, trust)


def test_an_expired_entry_is_refused(image: Path, endorser: Identity, trust: TrustStore) -> None:
    metadata = verify(signed(image, endorser), trust)
    with pytest.raises(BadRequest, match="expired"):
        entry_from_metadata(metadata, now=datetime.now(UTC) + timedelta(days=31))


def test_an_expired_certificate_is_refused(image: Path, ca: Identity,
                                           trust: TrustStore) -> None:
    old = issue("Old Endorser", ca, days=1, starts=datetime.now(UTC) - timedelta(days=3))
    with pytest.raises(BadRequest, match="not valid now"):
        verify(signed(image, old), trust)


def test_a_revoked_endorser_is_refused(image: Path, ca: Identity, tmp_path: Path) -> None:
    revoked = issue("Mallory Endorser", ca)
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "site-ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "ca" / "site-ca.crl").write_bytes(crl(ca, [revoked]))
    trust = TrustStore(tmp_path / "ca")
    with pytest.raises(BadRequest, match="revoked"):
        verify(signed(image, revoked), trust)
    verify(signed(image, issue("Honest Endorser", ca)), trust)  # the CRL names only Mallory


def test_an_endorser_of_another_ca_is_unknown(image: Path, trust: TrustStore) -> None:
    stranger = issue("Stranger", issue("Other CA", ca=True))
    with pytest.raises(BadRequest, match="unknown here"):
        verify(signed(image, stranger), trust)


def test_a_self_signed_endorser_is_unknown(image: Path, trust: TrustStore) -> None:
    with pytest.raises(BadRequest, match="unknown here"):
        verify(signed(image, issue("Alice Endorser", ca=True)), trust)


def test_intermediate_cas_are_followed(image: Path, ca: Identity, trust: TrustStore) -> None:
    intermediate = issue("Intermediate CA", ca, ca=True)
    endorser = issue("Carol Endorser", intermediate)
    verify(signed(image, endorser, intermediate), trust)
    with pytest.raises(BadRequest, match="unknown here"):  # without the intermediate
        verify(signed(image, endorser), trust)


def test_an_end_entity_cannot_act_as_ca(image: Path, endorser: Identity,
                                        trust: TrustStore) -> None:
    forged = issue("Forged Endorser", endorser)  # signed by a certificate that is no CA
    with pytest.raises(BadRequest, match="unknown here"):
        verify(signed(image, forged, endorser), trust)


@pytest.mark.parametrize("document", [
    None, [], {"metadata": {}}, {"metadata": {}, "signature": {"value": "%%%"}},
    {"metadata": {}, "signature": {"value": "AAAA", "certificates": ["not a PEM"]}},
])
def test_malformed_documents_are_refused(document, trust: TrustStore) -> None:
    with pytest.raises(BadRequest):
        verify(document, trust)


def test_a_site_without_cas_trusts_nobody(image: Path, endorser: Identity,
                                          tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="trusts no endorser"):
        verify(signed(image, endorser), TrustStore(tmp_path / "missing"))
