"""HEPiX image lists signed with S/MIME by a throwaway endorser, synchronised
into the image catalogue through `occi-server sync-image-lists` and seen as
os_tpl mixins; images are served by file:// URLs, never fetched from afar."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from occi_server.cli import main as occi_server
from occi_server.marketplace.entries import identifier
from occi_server.marketplace.imagelists import openssl_subject
from tests.conftest import SITE, Client
from tests.support.pki import Identity, crl, issue

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl is not installed")
IMAGE = b"QFI\xfb" + b"\0" * 508 + b"a small qcow2-looking image" * 40


@pytest.fixture(scope="module")
def ca() -> Identity:
    return issue("Image List CA", ca=True, days=365)


@pytest.fixture(scope="module")
def endorser(ca: Identity) -> Identity:
    return issue("EGI Endorser", ca)


@pytest.fixture
def site(tmp_path: Path, ca: Identity) -> Path:
    """A data directory whose marketplace CA directory trusts `ca`."""
    data = tmp_path / "data"
    (data / "marketplace-ca").mkdir(parents=True)
    (data / "marketplace-ca" / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "debian.qcow2").write_bytes(IMAGE)
    return data


def image_list(remote: Path, signer: Identity, *, expires: datetime | None = None,
               sha512: str | None = None, images: int = 1, dn: str | None = None) -> dict:
    entries = [{"hv:image": {
        "dc:identifier": "0a0b0c0d-0000-4000-8000-00000000000{n}", "dc:title": "Debian 12",
        "dc:description": "Debian 12 for the federation", "hv:version": "20261101",
        "hv:uri": (remote / "debian.qcow2").as_uri(), "hv:size": len(IMAGE),
        "sl:checksum:sha512": sha512 or hashlib.sha512(IMAGE).hexdigest(),
        "sl:arch": "x86_64", "sl:os": "Linux", "sl:osversion": "12"}} for n in range(images)]
    return {"hv:imagelist": {
        "dc:identifier": "6bd1c1a6-1111-4c3e-9d0b-5a0e0c8b2f10", "dc:title": "Test VO images",
        "dc:date:created": datetime.now(UTC).isoformat(),
        "dc:date:expires": (expires or datetime.now(UTC) + timedelta(days=7)).isoformat(),
        "hv:endorser": {"hv:x509": {"dc:creator": "EGI Endorser",
                                    "hv:dn": dn or openssl_subject(signer.certificate.subject),
                                    "hv:ca": openssl_subject(signer.certificate.issuer)}},
        "hv:version": "1", "hv:images": entries[:images]}}


def publish(path: Path, document: dict, signer: Identity, tamper: bool = False) -> None:
    """The list as S/MIME (multipart/signed), signed with `cryptography`."""
    content = json.dumps(document, indent=1).encode()
    signed = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(
        signer.certificate, signer.key, hashes.SHA256()).sign(
        serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    if tamper:
        signed = signed.replace(b'"Debian 12"', b'"Debian 13"', 1)
    path.write_bytes(signed)


def sync(site: Path, url: str, tmp_path: Path) -> int:
    config = tmp_path / "occi.toml"
    config.write_text(f'backend = "simulated"\n[[image_lists]]\nurl = "{url}"\n')
    return occi_server(["sync-image-lists", "--config", str(config), "--data-dir", str(site)])


def catalogue(site: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (site / "images").glob("*.json")}


def test_a_signed_list_publishes_its_images(make_app, site: Path, endorser: Identity,
                                            tmp_path: Path) -> None:
    listing = tmp_path / "remote" / "image.list"
    publish(listing, image_list(tmp_path / "remote", endorser), endorser)
    assert sync(site, listing.as_uri(), tmp_path) == 0
    term = identifier(hashlib.sha256(IMAGE).hexdigest())
    [(published, metadata)] = catalogue(site).items()
    assert published == term and metadata["format"] == "qcow2"
    assert (site / "images" / f"{term}.qcow2").read_bytes() == IMAGE
    assert metadata["endorsement"]["endorser"] == "CN=EGI Endorser,O=occi-server tests"
    # Seen by the service as an os_tpl carrying where it came from.
    client = Client(make_app(data_dir=str(site), compute_backend="libvirt",
                             accelerator="tcg", reconcile_seconds=0))
    mixin = next(
        m for m in client.json("/-/")["mixins"] if m["scheme"] + m["term"] ==
        f"{SITE}os_tpl#{term}")
    assert mixin["title"] == "Debian 12"
    attributes = mixin["attributes"]
    assert attributes["occi_server.marketplace.image_list"]["default"] == listing.as_uri()
    assert attributes["occi_server.marketplace.endorsers"]["default"] == \
        "CN=EGI Endorser,O=occi-server tests"
    # A second sync keeps what it has; a list without the image unpublishes it.
    assert sync(site, listing.as_uri(), tmp_path) == 0
    assert list(catalogue(site)) == [term]
    publish(listing, image_list(tmp_path / "remote", endorser, images=0), endorser)
    assert sync(site, listing.as_uri(), tmp_path) == 0
    assert catalogue(site) == {}


@pytest.mark.parametrize("case", ["tampered", "other CA", "revoked", "not the endorser",
                                  "expired"])
def test_lists_that_cannot_be_trusted_publish_nothing(site: Path, ca: Identity,
                                                      endorser: Identity, tmp_path: Path,
                                                      case: str, capsys) -> None:
    listing, remote = tmp_path / "remote" / "image.list", tmp_path / "remote"
    signer, document = endorser, image_list(remote, endorser)
    if case == "other CA":
        signer = issue("EGI Endorser", issue("Other CA", ca=True))
        document = image_list(remote, signer)
    elif case == "revoked":
        signer = issue("Revoked Endorser", ca)
        document = image_list(remote, signer)
        (site / "marketplace-ca" / "ca.crl").write_bytes(crl(ca, [signer]))
    elif case == "not the endorser":
        document = image_list(remote, endorser, dn="/O=occi-server tests/CN=Someone Else")
    elif case == "expired":
        document = image_list(remote, endorser,
                              expires=datetime.now(UTC) - timedelta(minutes=1))
    publish(listing, document, signer, tamper=case == "tampered")
    assert sync(site, listing.as_uri(), tmp_path) == 1
    assert catalogue(site) == {}
    reason = capsys.readouterr().err
    assert {"tampered": "does not verify", "other CA": "does not verify",
            "revoked": "does not verify", "not the endorser": "names endorser",
            "expired": "expired"}[case] in reason


def test_a_checksum_mismatch_rejects_the_image(site: Path, endorser: Identity,
                                               tmp_path: Path, capsys) -> None:
    listing = tmp_path / "remote" / "image.list"
    publish(listing, image_list(tmp_path / "remote", endorser, sha512="ab" * 64), endorser)
    assert sync(site, listing.as_uri(), tmp_path) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert catalogue(site) == {} and not any((site / "images").iterdir())


def test_an_expired_list_unpublishes_its_images(site: Path, endorser: Identity,
                                                tmp_path: Path) -> None:
    listing = tmp_path / "remote" / "image.list"
    publish(listing, image_list(tmp_path / "remote", endorser), endorser)
    assert sync(site, listing.as_uri(), tmp_path) == 0 and len(catalogue(site)) == 1
    publish(listing, image_list(tmp_path / "remote", endorser,
                                expires=datetime.now(UTC) - timedelta(minutes=1)), endorser)
    assert sync(site, listing.as_uri(), tmp_path) == 1
    assert catalogue(site) == {}
