"""OpenID Connect bearer tokens: JWTs signed by a configured issuer."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from occi_server.recent import Recent

# Asymmetric algorithms only: a shared-secret (HS*) or unsigned ("none") token
# could be forged by anyone who knows the issuer's public keys.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")
JWKS_REFRESH_SECONDS = 600
LEEWAY_SECONDS = 30  # clocks of the issuer and of this service may differ this much
# A token once verified is taken as it is for this long (never past its own
# end), by the most recent this many: its signature costs more than the rest of
# a GET answered from memory. A key withdrawn from the issuer's set stops being
# trusted within this time too.
VERIFIED_SECONDS = 60
VERIFIED_KEPT = 1024


class TokenRejected(Exception):
    """The token is not acceptable; the message says why (sent to the client)."""


class IssuerKeys:
    """The issuer's signing keys, from a JWKS file or URL, re-read every few
    minutes and at once when a token names a key not seen yet (key rotation)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._keys: dict[str, PyJWK] = {}
        self._read_at = 0.0
        self._lock = threading.Lock()

    def _load(self) -> dict[str, PyJWK]:
        if self.source.startswith(("https://", "http://")):
            client = jwt.PyJWKClient(self.source, cache_jwk_set=False, timeout=10)
            document = client.fetch_data()
        else:
            document = json.loads(Path(self.source).read_text())
        keys = PyJWKSet.from_dict(document).keys
        return {str(key.key_id or index): key for index, key in enumerate(keys)}

    def key(self, key_id: str | None) -> PyJWK:
        with self._lock:
            stale = time.monotonic() - self._read_at > JWKS_REFRESH_SECONDS
            if stale or (key_id is not None and key_id not in self._keys):
                try:
                    self._keys = self._load()
                except (OSError, ValueError, jwt.PyJWTError) as exc:
                    if not self._keys:
                        raise TokenRejected(f"the issuer's keys cannot be read: {exc}") from None
                self._read_at = time.monotonic()
            if key_id is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            if key_id is None or key_id not in self._keys:
                raise TokenRejected(f"the token is signed with a key the issuer does not list "
                                    f"(kid {key_id!r})")
            return self._keys[key_id]


class TokenVerifier:
    def __init__(self, issuer: str, audience: str, keys: IssuerKeys,
                 algorithms: tuple[str, ...] = ALGORITHMS) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.algorithms = [a for a in algorithms if a in ALGORITHMS]
        self._verified: Recent[dict[str, Any]] = Recent(VERIFIED_KEPT)

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims, once its signature, issuer, audience and times hold."""
        now = time.time()
        claims = self._verified.get(token, now)
        if claims is None:
            claims = self._verify(token)
            self._verified.put(token, claims,
                               min(now + VERIFIED_SECONDS, float(claims["exp"]) + LEEWAY_SECONDS))
        return dict(claims)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"malformed token: {exc}") from None
        if header.get("alg") not in self.algorithms:
            raise TokenRejected(f"tokens signed with {header.get('alg')!r} are not accepted; "
                                f"accepted: {', '.join(self.algorithms)}")
        key = self.keys.key(header.get("kid"))
        try:
            return jwt.decode(token, key=key.key, algorithms=self.algorithms,
                              audience=self.audience, issuer=self.issuer,
                              leeway=LEEWAY_SECONDS,
                              options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"the token is not meant for this service (audience "
                                f"{self.audience!r})") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(f"the token was not issued by {self.issuer}") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid token: {exc}") from None


def claim_values(claims: dict[str, Any], names: list[str]) -> list[str]:
    """Every value of the named claims (a string or a list of strings each)."""
    values: list[str] = []
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, list):
            values.extend(v for v in value if isinstance(v, str))
    return values
