"""Browser sessions for the web pages: after a sign-in checked by the same
authenticator as the API, a signed cookie stands for the credentials (a browser
cannot attach a bearer token to a link, and a password is never kept).

The key is a site secret in the store, made once and read by every worker and
front end. A password session holds a fingerprint of the stored password hash, checked on
every request: a changed password or a removed user ends it at once; a token
session ends when its token expires."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from occi_server.errors import Unauthorized
from occi_server.identity.principal import Principal

SESSION_COOKIE = "occi_session"
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    """What a session cookie says: who, how they signed in, until when."""

    name: str
    method: str
    tenants: tuple[str, ...]
    admin: bool
    expires: float
    proof: str = ""  # basic: fingerprint of the password hash signed in with


class Sessions:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def fingerprint(self, name: str, password_hash: str) -> str:
        return hmac.new(self._key, f"password\0{name}\0{password_hash}".encode(),
                        hashlib.sha256).hexdigest()[:32]

    def issue(self, session: Session) -> str:
        body = base64.urlsafe_b64encode(json.dumps({
            "n": session.name, "m": session.method, "t": list(session.tenants),
            "a": session.admin, "e": int(session.expires), "p": session.proof}).encode())
        return f"{body.decode()}.{self._sign(body)}"

    def read(self, cookie: str, now: float | None = None) -> Session:
        """The session a cookie carries; Unauthorized if it is forged or over."""
        body, _, signature = cookie.encode().partition(b".")
        if not hmac.compare_digest(self._sign(body).encode(), signature):
            raise Unauthorized("the session cookie is not this site's; sign in again")
        try:
            fields = json.loads(base64.urlsafe_b64decode(body))
            session = Session(name=str(fields["n"]), method=str(fields["m"]),
                              tenants=tuple(str(t) for t in fields["t"]),
                              admin=bool(fields["a"]), expires=float(fields["e"]),
                              proof=str(fields["p"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise Unauthorized("the session cookie is malformed; sign in again") from None
        if session.expires <= (time.time() if now is None else now):
            raise Unauthorized("your session has ended; sign in again")
        return session

    def _sign(self, body: bytes) -> str:
        digest = hmac.new(self._key, b"session\0" + body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def principal_of(session: Session) -> Principal:
    return Principal(session.name, session.tenants, admin=session.admin, method=session.method)
