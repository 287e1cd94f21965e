"""One authentication layer: HTTP basic (config and store users), OIDC bearer
tokens, X.509 subjects from trusted proxies; each refusal is a 401 whose
WWW-Authenticate names every enabled scheme."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import Flask
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from occi_server.cli import main as occi_server
from occi_server.identity.x509 import canonical_dn
from tests.conformance.test_web import Browser, text
from tests.conftest import Client
from tests.support.tenants import basic, client_of, site_users

ISSUER = "https://aai.example.org/auth/realms/egi"
AUDIENCE = "occi-server-test"
VO_GROUP = "urn:mace:egi.eu:group:vo.example.org:role=member#aai.example.org"
ADMIN_SUBJECT = "op-1234@example.org"
ALICE_DN = "/DC=org/DC=example/O=Example/CN=Alice Example"
PROXY = "10.1.2.3"


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, Any]:
    return {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "other": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP256R1())}


@pytest.fixture
def jwks(tmp_path: Path, signing_keys: dict[str, Any]) -> Path:
    keys = [{**json.loads(RSAAlgorithm.to_jwk(signing_keys["rsa"].public_key())),
             "kid": "rsa-1", "use": "sig", "alg": "RS256"},
            {**json.loads(ECAlgorithm.to_jwk(signing_keys["ec"].public_key())),
             "kid": "ec-1", "use": "sig", "alg": "ES256"}]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path


@pytest.fixture
def app(make_app, jwks: Path) -> Flask:
    return make_app(auth="basic, oidc, x509", users=site_users(), oidc_issuer=ISSUER,
                    oidc_audience=AUDIENCE, oidc_jwks=str(jwks),
                    oidc_tenants={VO_GROUP: "vo-example"}, admins=[ADMIN_SUBJECT],
                    x509_dn_header="X-SSL-Client-S-DN", x509_fqans_header="X-VOMS-FQANs",
                    trusted_proxies=[f"{PROXY}/32"], x509_vos={"vo.example.org": "vo-example"})


def token(signing_keys: dict[str, Any], *, key: str = "rsa", kid: str = "rsa-1",
          algorithm: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42@example.org", "iat": now,
            "exp": now + 300, "eduperson_entitlement": [VO_GROUP, "urn:other:group"], **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, signing_keys[key],
                      algorithm=algorithm, headers={"kid": kid})


def whoami(app: Flask, **headers: str) -> Any:
    environ = {"REMOTE_ADDR": headers.pop("remote", "127.0.0.1")}
    return Client(app).http.get("/api/whoami", headers=headers, environ_base=environ)


def test_without_credentials_every_enabled_scheme_is_challenged(app: Flask) -> None:
    response = whoami(app)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge == ('Basic realm="occi-server", charset="UTF-8", '
                         'Bearer realm="occi-server", X509 realm="occi-server"')
    assert "HTTP basic credentials or an OIDC bearer token or a client certificate" in \
        response.get_data(as_text=True)


def test_basic_users_from_the_configuration_and_from_the_store(app: Flask, tmp_path: Path,
                                                               monkeypatch) -> None:
    assert whoami(app, Authorization=basic("alice")).get_json()["tenants"] == ["tenant-a"]
    assert whoami(app, Authorization=basic("alice", "wrong")).status_code == 401
    assert whoami(app, Authorization="Basic !!!").status_code == 401
    for near in ("alice-pw\0", "alice-pw\n", "\0alice-pw"):  # exactly the password, no more
        assert whoami(app, Authorization=basic("alice", near)).status_code == 401
    monkeypatch.setattr("sys.stdin", io.StringIO("dave-pw\n"))
    assert occi_server(["user", "add", "dave", "--tenant", "tenant-d", "--tenant", "tenant-e",
                        "--data-dir", str(tmp_path / "data")]) == 0
    found = whoami(app, Authorization=basic("dave", "dave-pw")).get_json()
    assert (found["name"], found["tenants"], found["operator"]) == \
        ("dave", ["tenant-d", "tenant-e"], False)
    # Verified passwords are remembered (the hash is slow), but a change counts at once.
    monkeypatch.setattr("sys.stdin", io.StringIO("new-pw\n"))
    assert occi_server(["user", "add", "dave", "--tenant", "tenant-d", "--admin",
                        "--data-dir", str(tmp_path / "data")]) == 0
    assert whoami(app, Authorization=basic("dave", "dave-pw")).status_code == 401
    assert whoami(app, Authorization=basic("dave", "new-pw")).get_json()["operator"] is True
    assert occi_server(["user", "remove", "dave", "--data-dir", str(tmp_path / "data")]) == 0
    assert whoami(app, Authorization=basic("dave", "new-pw")).status_code == 401


def test_a_valid_token_maps_its_entitlements_to_tenants(app: Flask, signing_keys) -> None:
    found = whoami(app, Authorization=f"Bearer {token(signing_keys)}").get_json()
    assert found == {"name": "user-42@example.org", "method": "oidc", "tenants": ["vo-example"],
                     "tenant": "vo-example", "operator": False, "fqans": []}
    ec_token = token(signing_keys, key="ec", kid="ec-1", algorithm="ES256")
    assert whoami(app, Authorization=f"Bearer {ec_token}").status_code == 200
    operator = whoami(app, Authorization="Bearer " + token(signing_keys, sub=ADMIN_SUBJECT))
    assert operator.get_json()["operator"] is True


def test_a_token_without_a_mapped_group_acts_for_no_tenant(app: Flask, signing_keys) -> None:
    response = whoami(app, Authorization="Bearer " + token(
        signing_keys, eduperson_entitlement=["urn:other:group"]))
    assert response.status_code == 403
    assert "belongs to no tenant" in response.get_data(as_text=True)


@pytest.mark.parametrize(("claims", "reason"), [
    ({"exp": int(time.time()) - 3600}, "the token has expired"),
    ({"aud": "another-service"}, "not meant for this service"),
    ({"iss": "https://evil.example.org"}, "was not issued by"),
    ({"exp": None}, 'missing the "exp" claim'),
])
def test_bad_tokens_are_refused(app: Flask, signing_keys, claims: dict, reason: str) -> None:
    response = whoami(app, Authorization=f"Bearer {token(signing_keys, **claims)}")
    assert response.status_code == 401
    assert reason in response.get_data(as_text=True)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_forged_tokens_are_refused(app: Flask, signing_keys) -> None:
    wrong_key = token(signing_keys, key="other")  # claims to be rsa-1
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": 1,
                           "exp": int(time.time()) + 300}, None, algorithm="none",
                          headers={"kid": "rsa-1"})
    public_pem = signing_keys["rsa"].public_key().public_bytes(
        encoding=Encoding.PEM, format=PublicFormat.SubjectPublicKeyInfo)
    # HS256 keyed with the public key: the classic algorithm-confusion forgery.
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": 1,
         "exp": int(time.time()) + 300}).encode())
    signature = jwt.utils.base64url_encode(hmac.new(public_pem, header + b"." + payload,
                                                    hashlib.sha256).digest())
    confused = (header + b"." + payload + b"." + signature).decode()
    unknown_kid = token(signing_keys, kid="rotated-away")
    for forged, reason in ((wrong_key, "signature does not verify"),
                           (unsigned, "'none' are not accepted"),
                           (confused, "'HS256' are not accepted"),
                           (unknown_kid, "a key the issuer does not list"),
                           ("not.a.token", "malformed token")):
        response = whoami(app, Authorization=f"Bearer {forged}")
        assert response.status_code == 401, reason
        assert reason in response.get_data(as_text=True)


def test_a_trusted_proxy_passes_the_subject_and_voms_attributes(app: Flask) -> None:
    rfc2253 = "CN=Alice Example,O=Example,DC=example,DC=org"
    found = whoami(app, remote=PROXY, **{
        "X-SSL-Client-S-DN": rfc2253,
        "X-VOMS-FQANs": "/vo.example.org/Role=NULL/Capability=NULL,/other.vo/Role=NULL"}
    ).get_json()
    assert found["name"] == ALICE_DN
    assert found["tenants"] == ["vo-example"]
    assert found["fqans"] == ["/vo.example.org/Role=NULL/Capability=NULL", "/other.vo/Role=NULL"]


def test_subject_headers_from_anyone_but_the_proxy_are_rejected(app: Flask) -> None:
    for remote in ("127.0.0.1", "10.1.2.4"):
        spoofed = whoami(app, remote=remote, **{"X-SSL-Client-S-DN": ALICE_DN,
                                                "X-VOMS-FQANs": "/vo.example.org"})
        assert spoofed.status_code == 401
        assert "accepted only from the site's trusted proxies" in spoofed.get_data(as_text=True)
        # Not even with a valid password next to it.
        both = whoami(app, remote=remote, Authorization=basic("alice"),
                      **{"X-SSL-Client-S-DN": ALICE_DN})
        assert both.status_code == 401


def test_store_users_can_be_certificate_subjects(app: Flask, tmp_path: Path) -> None:
    assert occi_server(["user", "add", "alice-cert", "--tenant", "tenant-a", "--no-password",
                        "--dn", "CN=Alice Example,O=Example,DC=example,DC=org",
                        "--data-dir", str(tmp_path / "data")]) == 0
    found = whoami(app, remote=PROXY, **{"X-SSL-Client-S-DN": ALICE_DN}).get_json()
    assert (found["name"], found["tenants"]) == ("alice-cert", ["tenant-a"])


def test_distinguished_names_in_either_form_are_the_same() -> None:
    assert canonical_dn("CN=A\\, B,O=X,DC=org") == "/DC=org/O=X/CN=A, B"
    assert canonical_dn("/DC=org/O=X/CN=A, B") == "/DC=org/O=X/CN=A, B"
    with pytest.raises(ValueError, match="not a distinguished name"):
        canonical_dn("just a name")


def test_unknown_schemes_are_refused(app: Flask) -> None:
    response = whoami(app, Authorization="Negotiate abc")
    assert response.status_code == 401
    assert "negotiate authorization scheme is not accepted" in response.get_data(as_text=True)


def test_without_authentication_one_anonymous_operator_uses_the_site(make_app) -> None:
    found = client_of(make_app(), "alice").get("/api/whoami").get_json()
    assert (found["name"], found["tenant"], found["operator"]) == ("anonymous", "default", True)


def test_keys_come_from_the_issuers_jwks_uri_and_rotate(make_app, signing_keys,
                                                        tmp_path: Path) -> None:
    """The issuer's jwks_uri (served on loopback) is read again when a token
    names a key it did not list before."""
    published: dict[str, Any] = {"keys": [
        {**json.loads(RSAAlgorithm.to_jwk(signing_keys["rsa"].public_key())), "kid": "rsa-1"}]}

    class Issuer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(published).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Issuer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = make_app(auth="oidc", oidc_issuer=ISSUER, oidc_audience=AUDIENCE,
                       oidc_jwks=f"http://127.0.0.1:{server.server_address[1]}/certs",
                       oidc_tenants={VO_GROUP: "vo-example"})
        assert whoami(app, Authorization=f"Bearer {token(signing_keys)}").status_code == 200
        rotated = token(signing_keys, key="other", kid="rsa-2")
        assert whoami(app, Authorization=f"Bearer {rotated}").status_code == 401
        published["keys"].append({**json.loads(RSAAlgorithm.to_jwk(
            signing_keys["other"].public_key())), "kid": "rsa-2"})
        assert whoami(app, Authorization=f"Bearer {rotated}").status_code == 200
    finally:
        server.shutdown()


def test_the_web_pages_take_a_token_for_as_long_as_it_lasts(app: Flask, signing_keys) -> None:
    browser = Browser(app)
    refused = browser.post("/my/sign-in", {"token": "not.a.token", "next": "/my/"})
    assert refused.status_code == 401 and "bearer token refused" in text(refused)
    short = token(signing_keys, exp=int(time.time()) + 2)
    assert browser.post("/my/sign-in", {"token": short, "next": "/my/"}).status_code == 303
    page = browser.get("/my/")
    assert page.status_code == 200 and "user-42@example.org" in text(page)
    assert "tenant vo-example" in text(page)
    time.sleep(2.5)
    assert browser.get("/my/").status_code == 302  # the token's end is the session's


def test_the_web_pages_know_a_certificate_the_proxy_vouches_for(app: Flask) -> None:
    page = Client(app).http.get("/my/", environ_base={"REMOTE_ADDR": PROXY}, headers={
        "X-SSL-Client-S-DN": "CN=Alice Example,O=Example,DC=example,DC=org",
        "X-VOMS-FQANs": "/vo.example.org/Role=NULL/Capability=NULL"})
    assert page.status_code == 200
    assert ALICE_DN in text(page) and "tenant vo-example" in text(page)
    assert "Sign out" not in text(page)  # nothing to sign out of: the certificate is it


def test_a_token_is_verified_once_a_minute_and_never_past_its_end(
        app: Flask, signing_keys, monkeypatch: pytest.MonkeyPatch) -> None:
    from occi_server.identity import oidc

    decoded: list[str] = []
    decode = oidc.jwt.decode

    def counted(token: str, **options: Any) -> dict[str, Any]:
        decoded.append(token)
        return decode(token, **options)

    monkeypatch.setattr(oidc.jwt, "decode", counted)
    lasting, ending = token(signing_keys), token(signing_keys, exp=int(time.time()) - 20)
    for bearer in (lasting, lasting, ending, ending):
        assert whoami(app, Authorization=f"Bearer {bearer}").status_code == 200
    assert decoded == [lasting, ending]
    started = time.time()
    monkeypatch.setattr(oidc.time, "time", lambda: started + 15)  # past `ending`'s leeway
    for bearer in (lasting, ending):
        whoami(app, Authorization=f"Bearer {bearer}")
    assert decoded == [lasting, ending, ending]
    monkeypatch.setattr(oidc.time, "time", lambda: started + 61)
    assert whoami(app, Authorization=f"Bearer {lasting}").status_code == 200
    assert decoded == [lasting, ending, ending, lasting]
