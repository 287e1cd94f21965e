"""One authentication layer for every enabled credential: HTTP basic, OIDC
bearer tokens and X.509 certificates (from the TLS connection or a trusted
front proxy). The answer is a Principal, or an Unauthorized error whose
WWW-Authenticate lists a challenge for each enabled scheme."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from occi_server.config import Config
from occi_server.errors import Unauthorized
from occi_server.identity.oidc import IssuerKeys, TokenRejected, TokenVerifier, claim_values
from occi_server.identity.principal import Principal
from occi_server.identity.sessions import (
    SESSION_SECONDS,
    Session,
    Sessions,
    principal_of,
)
from occi_server.identity.x509 import TrustedProxies, canonical_dn, fqans, vo_of
from occi_server.store import DEFAULT_TENANT, Store

REALM = "occi-server"
# Verified basic credentials are remembered this long: a password hash made to
# be slow (scrypt) is then computed once per client and minute, not per request.
VERIFIED_SECONDS = 60.0
VERIFIED_MAX = 4096
# Checked when the user is unknown, so that the answer takes as long as for a
# known user with a wrong password (user names are not revealed by timing).
_DUMMY_HASH = generate_password_hash("not a password")


@dataclass(frozen=True)
class Credentials:
    """What a request carries that can identify its sender."""

    headers: Mapping[str, str]
    remote_addr: str | None = None
    peer_dn: str | None = None  # subject of the client certificate, when TLS ends here
    session: str | None = None  # a web page's session cookie


class Authenticator:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.methods = config.auth_methods
        self.admins = {_name(a) for a in config.admins}
        self.proxies = TrustedProxies(config.trusted_proxies)
        self.verifier = TokenVerifier(config.oidc_issuer, config.oidc_audience,
                                      IssuerKeys(config.oidc_jwks)) \
            if "oidc" in self.methods else None
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._verified_lock = threading.Lock()
        self._secret = secrets.token_bytes(32)  # keys the cache: no password is kept

    def challenge(self, token_error: str | None = None) -> dict[str, str]:
        challenges = []
        if "basic" in self.methods:
            challenges.append(f'Basic realm="{REALM}", charset="UTF-8"')
        if "oidc" in self.methods:
            bearer = f'Bearer realm="{REALM}"'
            if token_error:
                description = token_error.replace('"', "'")
                bearer += f', error="invalid_token", error_description="{description}"'
            challenges.append(bearer)
        if "x509" in self.methods:
            challenges.append(f'X509 realm="{REALM}"')
        return {"WWW-Authenticate": ", ".join(challenges)}

    def _refuse(self, message: str, token_error: str | None = None) -> Unauthorized:
        return Unauthorized(message, headers=self.challenge(token_error))

    def authenticate(self, credentials: Credentials) -> Principal:
        if not self.methods:
            return Principal("anonymous", (DEFAULT_TENANT,), admin=True)
        proxied_dn = self._proxied_dn(credentials)
        scheme, _, value = credentials.headers.get("Authorization", "").partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and "basic" in self.methods:
            return self._basic(value.strip())
        if scheme == "bearer" and "oidc" in self.methods:
            return self._bearer(value.strip())
        if scheme:
            enabled = ", ".join(self.methods)
            raise self._refuse(f"the {scheme} authorization scheme is not accepted here; "
                               f"enabled: {enabled}")
        if credentials.session:
            return self._session(credentials.session)
        if "x509" in self.methods:
            dn = proxied_dn or credentials.peer_dn
            if dn:
                return self._certificate(dn, credentials, proxied=proxied_dn is not None)
        raise self._refuse("authentication required: " + " or ".join(
            {"basic": "HTTP basic credentials", "oidc": "an OIDC bearer token",
             "x509": "a client certificate"}[m] for m in self.methods))

    # ------------------------------------------------------------ web sessions
    @cached_property
    def sessions(self) -> Sessions:
        with self.store.transaction(write=True) as repo:
            return Sessions(repo.secret("web-session-key", lambda: secrets.token_bytes(32)))

    def sign_in(self, user: str, password: str) -> str:
        """A web sign-in with a user name and password: its session cookie."""
        if "basic" not in self.methods:
            raise self._refuse("this site takes no passwords")
        principal, hashed = self._password(user, password)
        return self.sessions.issue(Session(
            principal.name, "basic", principal.tenants, principal.admin,
            time.time() + SESSION_SECONDS, self.sessions.fingerprint(user, hashed)))

    def sign_in_token(self, token: str) -> str:
        """A web sign-in with an OIDC access token, for as long as the token lasts."""
        if "oidc" not in self.methods:
            raise self._refuse("this site takes no OIDC tokens")
        principal, claims = self._token(token)
        expires = min(float(claims.get("exp", 0)) or time.time() + SESSION_SECONDS,
                      time.time() + SESSION_SECONDS)
        return self.sessions.issue(Session(
            principal.name, "oidc", principal.tenants, principal.admin, expires))

    def _session(self, cookie: str) -> Principal:
        try:
            session = self.sessions.read(cookie)
        except Unauthorized as exc:
            raise self._refuse(exc.message) from None
        if session.method != "basic":
            return principal_of(session)
        record = self.user_record(session.name)
        hashed = record.get("password_hash") if record else None
        if not hashed or not hmac.compare_digest(
                self.sessions.fingerprint(session.name, hashed), session.proof):
            raise self._refuse("your password changed or your account was removed; "
                               "sign in again")
        assert record is not None
        return self._user_principal(session.name, record)

    # ------------------------------------------------------------ basic
    def _basic(self, encoded: str) -> Principal:
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise self._refuse("malformed basic credentials") from None
        return self._password(user, password)[0]

    def _password(self, user: str, password: str) -> tuple[Principal, str]:
        """The user whose password this is, and the stored hash it matched."""
        if any(ord(c) < 32 or ord(c) == 127 for c in user + password):
            # The password hashes stop at a NUL: "pw\0" would pass for "pw".
            raise self._refuse("malformed basic credentials: control characters")
        record = self.user_record(user)
        hashed = record.get("password_hash") if record else None
        if not hashed:
            check_password_hash(_DUMMY_HASH, password)  # as long as for a known user
            raise self._refuse("wrong user name or password")
        if not self._password_matches(user, password, hashed):
            raise self._refuse("wrong user name or password")
        assert record is not None
        return self._user_principal(user, record), hashed

    def _user_principal(self, name: str, record: dict[str, Any]) -> Principal:
        """A user of the configuration or the store, signed in with a password."""
        return Principal(name, tuple(record["tenants"]),
                         admin=bool(record["admin"]) or name in self.admins, method="basic")

    def _password_matches(self, user: str, password: str, hashed: str) -> bool:
        """The slow hash is computed once per minute and client; the key includes the
        stored hash, so a changed password or a removed user takes effect at once."""
        key = hmac.new(self._secret, f"{user}\0{password}\0{hashed}".encode(),
                       hashlib.sha256).digest()
        now = time.monotonic()
        with self._verified_lock:
            seen = self._verified.get(key)
            if seen is not None and now - seen < VERIFIED_SECONDS:
                return True
        if not check_password_hash(hashed, password):
            return False
        with self._verified_lock:
            self._verified[key] = now
            self._verified.move_to_end(key)
            while len(self._verified) > VERIFIED_MAX:
                self._verified.popitem(last=False)
        return True

    def user_record(self, name: str) -> dict[str, Any] | None:
        """A user of the configuration file ([users]), else of the store."""
        configured = self.config.users.get(name)
        if isinstance(configured, str):
            return {"password_hash": configured, "tenants": [DEFAULT_TENANT], "admin": False}
        if isinstance(configured, dict):
            return {"password_hash": configured.get("password_hash"),
                    "tenants": list(configured.get("tenants", [DEFAULT_TENANT])),
                    "admin": bool(configured.get("admin", False))}
        with self.store.transaction(write=False) as repo:
            return repo.user(name)

    # ------------------------------------------------------------ OIDC
    def _bearer(self, token: str) -> Principal:
        return self._token(token)[0]

    def _token(self, token: str) -> tuple[Principal, dict[str, Any]]:
        assert self.verifier is not None
        try:
            claims = self.verifier.claims(token)
        except TokenRejected as exc:
            raise self._refuse(f"bearer token refused: {exc}", token_error=str(exc)) from None
        name = str(claims.get(self.config.oidc_user_claim) or claims["sub"])
        tenants: list[str] = []
        for value in claim_values(claims, self.config.oidc_tenant_claims):
            tenant = self.config.oidc_tenants.get(value)
            if tenant and tenant not in tenants:
                tenants.append(tenant)
        return Principal(name, tuple(tenants), admin=name in self.admins, method="oidc"), claims

    # ------------------------------------------------------------ X.509
    def _proxied_dn(self, credentials: Credentials) -> str | None:
        """The DN a front proxy passes, believed only from the configured proxies:
        anyone else sending the header is refused outright."""
        header = self.config.x509_dn_header
        value = credentials.headers.get(header) if header else None
        if not value:
            return None
        if "x509" not in self.methods or credentials.remote_addr not in self.proxies:
            raise self._refuse(f"{header} is accepted only from the site's trusted proxies, "
                               f"not from {credentials.remote_addr}")
        try:
            return canonical_dn(value)
        except ValueError as exc:
            raise self._refuse(f"{header}: {exc}") from None

    def _certificate(self, dn: str, credentials: Credentials, *, proxied: bool) -> Principal:
        header = self.config.x509_fqans_header
        attributes = fqans(credentials.headers.get(header, "")) if proxied and header else ()
        with self.store.transaction(write=False) as repo:
            record = repo.user_by_subject(dn)
        if record is not None:
            return Principal(record["name"], tuple(record["tenants"]),
                             admin=bool(record["admin"]) or dn in self.admins, method="x509",
                             fqans=attributes)
        tenants: list[str] = []
        for fqan in attributes:
            tenant = self.config.x509_vos.get(vo_of(fqan))
            if tenant and tenant not in tenants:
                tenants.append(tenant)
        return Principal(dn, tuple(tenants), admin=dn in self.admins, method="x509",
                         fqans=attributes)


def _name(admin: str) -> str:
    """Operators are listed by user name, token subject or certificate DN."""
    if "=" in admin and ("/" in admin or "," in admin):
        try:
            return canonical_dn(admin)
        except ValueError:
            return admin
    return admin
