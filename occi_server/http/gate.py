"""What every request passes on its way in and out, whichever way it is
answered (through Flask, or from the answers kept in memory): the OCCI version
check, authentication, rate limits and the tenant scope; the headers every
answer carries, the request's metrics and its access-log line."""

from __future__ import annotations

import json
import logging
import math
import re
import ssl
import time
from collections.abc import Mapping, MutableMapping
from http import HTTPStatus
from typing import Any

from occi_server import OCCI_VERSION, SERVER_HEADER
from occi_server.errors import NotImplementedFeature, TooManyRequests, Unauthorized
from occi_server.http.tenancy import TENANT_HEADER
from occi_server.identity import Authenticator, Credentials, Principal, RateLimiter
from occi_server.identity.ratelimit import Rule
from occi_server.identity.x509 import peer_certificate_dn
from occi_server.metrics import LATENCY, REQUESTS, route_of
from occi_server.rendering import SUPPORTED
from occi_server.store import Scope

log = logging.getLogger("occi_server.http")
_VERSION_TOKEN = re.compile(r"OCCI/(\d+)\.(\d+)")
_SUPPORTED_VERSION = tuple(int(p) for p in OCCI_VERSION.split("."))
# Werkzeug upper-cases reason phrases; strict clients expect RFC 9110's.
STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_ACCEPTED = ", ".join(SUPPORTED)
_TENANT_KEY = "HTTP_" + TENANT_HEADER.upper().replace("-", "_")  # as WSGI names it
# Where a request's environ carries who sent it, or why that was refused, once
# authenticated (WSGI names every header HTTP_…: a client cannot set it).
AUTHENTICATED = "occi.principal"


class Gate:
    def __init__(self, authenticator: Authenticator, limiter: RateLimiter | None,
                 limits: dict[str, Rule | None]) -> None:
        self.authenticator = authenticator
        self.limiter = limiter
        self.limits = limits

    @staticmethod
    def check_version(environ: Mapping[str, Any]) -> None:
        """501 for a client that asks for a later OCCI than this server speaks."""
        versions = [(int(a), int(b))
                    for a, b in _VERSION_TOKEN.findall(environ.get("HTTP_USER_AGENT", ""))]
        if versions and max(versions) > _SUPPORTED_VERSION:
            wanted = ".".join(map(str, max(versions)))
            raise NotImplementedFeature(f"this server speaks OCCI {OCCI_VERSION}; the client "
                                        f"asks for OCCI {wanted}")

    def authenticate(self, environ: Mapping[str, Any], headers: Mapping[str, str],
                     remote: str | None, session: str | None) -> Principal:
        """Who sends the request (Unauthorized otherwise). Without a session
        (not a web page), what the answer path found, if it looked."""
        if session is None and AUTHENTICATED in environ:
            found = environ[AUTHENTICATED]
            if isinstance(found, Unauthorized):
                raise found
            return found  # type: ignore[no-any-return]
        socket = environ.get("gunicorn.socket")
        peer = socket.getpeercert() if isinstance(socket, ssl.SSLSocket) else None
        return self.authenticator.authenticate(Credentials(
            headers=headers, remote_addr=remote, peer_dn=peer_certificate_dn(peer),
            session=session))

    def count(self, principal: Principal | None, remote: str | None) -> None:
        """Count the request against its rate limit (429 past it): per user, or
        per address where there are no credentials to tell users apart."""
        if principal is not None and self.authenticator.methods:
            self._count(f"user:{principal.name}", self.limits["authenticated"])
        else:
            self._count(f"address:{remote}", self.limits["anonymous"])

    def _count(self, key: str, rule: Rule | None) -> None:
        if self.limiter is None or rule is None:
            return
        wait = self.limiter.hit(key, rule)
        if wait is not None:
            raise TooManyRequests(f"too many requests: at most {rule.requests} per "
                                  f"{rule.seconds} s; try again in {wait:g} s",
                                  headers={"Retry-After": str(max(1, math.ceil(wait)))})

    @staticmethod
    def scope(principal: Principal, environ: Mapping[str, Any]) -> Scope:
        """The tenant scope the request acts in (the X-Tenant header's, if any)."""
        return principal.scope(environ.get(_TENANT_KEY) or None)

    @staticmethod
    def sign(headers: MutableMapping[str, str], request_id: str, *, occi: bool = True) -> None:
        """The headers every answer carries (`occi`: the media types accepted,
        which CIMI says in its own way)."""
        headers["Server"] = SERVER_HEADER
        if occi:
            headers["Accept"] = _ACCEPTED
        headers["X-Request-Id"] = request_id

    @staticmethod
    def account(method: str, path: str, status: int, started: float, request_id: str) -> None:
        """The request's metrics and its access-log line."""
        seconds = time.perf_counter() - started
        route = route_of(path)
        REQUESTS.labels(method, route, str(status)).inc()
        LATENCY.labels(method, route).observe(seconds)
        if log.isEnabledFor(logging.INFO):
            # The path as a JSON string: a %0A in it cannot start a forged log line.
            log.info("request method=%s path=%s status=%d duration_ms=%.1f",
                     method, json.dumps(path), status, seconds * 1000,
                     extra={"request_id": request_id,
                            "fields": {"method": method, "path": path, "route": route,
                                       "status": status,
                                       "duration_ms": round(seconds * 1000, 1)}})
