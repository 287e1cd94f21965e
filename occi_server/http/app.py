"""create_app(config): the Flask application."""

from __future__ import annotations

import json
import logging
import math
import re
import ssl
import time
from http import HTTPStatus
from pathlib import Path

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from occi_server import OCCI_VERSION, SERVER_HEADER
from occi_server.backends import load_backends
from occi_server.backends.base import Backends
from occi_server.cimi.views import blueprint as cimi_blueprint
from occi_server.config import Config
from occi_server.errors import BadRequest, NotImplementedFeature, TooManyRequests, Unauthorized
from occi_server.http.answers import Answers
from occi_server.http.errors import register_error_handlers
from occi_server.http.logs import request_id
from occi_server.http.marketplace import blueprint as marketplace_blueprint
from occi_server.http.ops import blueprint as ops_blueprint
from occi_server.http.tenancy import TENANT_HEADER
from occi_server.http.tenancy import blueprint as tenancy_blueprint
from occi_server.http.views import dispatch
from occi_server.http.web import is_page
from occi_server.http.web.marketplace import blueprint as marketplace_pages
from occi_server.http.web.portal import blueprint as portal_pages
from occi_server.identity import Authenticator, Credentials, RateLimiter
from occi_server.identity.ratelimit import FileCounters, Rule, StoreCounters
from occi_server.identity.sessions import SESSION_COOKIE
from occi_server.identity.x509 import peer_certificate_dn
from occi_server.metrics import LATENCY, REQUESTS, route_of
from occi_server.rendering import SUPPORTED
from occi_server.service import Reconciler, Service
from occi_server.store import Store

log = logging.getLogger("occi_server.http")
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]
_VERSION_TOKEN = re.compile(r"OCCI/(\d+)\.(\d+)")
_SUPPORTED_VERSION = tuple(int(p) for p in OCCI_VERSION.split("."))
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_ACCEPTED = ", ".join(SUPPORTED)
_TENANT_KEY = "HTTP_" + TENANT_HEADER.upper().replace("-", "_")  # as WSGI names it


def create_app(config: Config, *, backends: Backends | None = None,
               migrate: bool = True, background: bool = True) -> Flask:
    """The OCCI service for `config`. `backends` overrides the configured ones
    (tests); `migrate` brings the database schema up to date first;
    `background` starts the reconciler thread now (a pre-forking server starts
    it in each worker instead, after the fork)."""
    config.validate()
    Path(config.data_path).mkdir(parents=True, exist_ok=True)
    store = Store(config.effective_database_url)
    if migrate:
        store.migrate()
    if backends is None:
        backends = load_backends(config)
    app = Flask("occi_server")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    service = Service(config, store, backends)
    app.extensions["occi.service"] = service
    service.take_over_jobs()
    if config.reconcile_seconds > 0:  # states, orphans, and jobs whose front end stopped
        reconciler = Reconciler(service, config.reconcile_seconds, config.orphans,
                                config.orphan_grace_seconds)
        app.extensions["occi.reconciler"] = reconciler
        if any(backend.observes for _, backend in backends.areas()):
            reconciler.audit(startup=True)  # nothing is in progress yet
        if background:
            reconciler.start()
    app.extensions["occi.store"] = store
    app.extensions["occi.answers"] = Answers(config.answer_cache_bytes)
    app.extensions["occi.config"] = config
    app.url_map.strict_slashes = False
    app.register_blueprint(marketplace_blueprint)
    app.register_blueprint(marketplace_pages)
    app.register_blueprint(portal_pages)
    app.register_blueprint(ops_blueprint)
    app.register_blueprint(tenancy_blueprint)
    app.register_blueprint(cimi_blueprint, url_prefix=config.cimi_path.rstrip("/"))
    app.add_url_rule("/", "root", dispatch, methods=METHODS, provide_automatic_options=False)
    app.add_url_rule("/<path:path>", "path", dispatch, methods=METHODS,
                     provide_automatic_options=False)
    register_error_handlers(app, config.max_body_bytes)

    authenticator = Authenticator(config, store)
    app.extensions["occi.authenticator"] = authenticator
    limits = {"anonymous": Rule.parse(config.rate_limit_anonymous),
              "authenticated": Rule.parse(config.rate_limit_authenticated)}
    limiter = RateLimiter(StoreCounters(store) if store.engine.dialect.name == "postgresql"
                          else FileCounters(config.data_path / "ratelimit.sqlite3")) \
        if any(limits.values()) else None

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        _check_version(request.environ.get("HTTP_USER_AGENT", ""))
        _identify(authenticator, limiter, limits)
        _read_body()

    @app.after_request
    def _finish(response: Response) -> Response:
        status, method, path = response.status_code, request.method, request.path
        # Werkzeug upper-cases reason phrases; strict clients expect RFC 9110's.
        response.status = _STATUS_LINES.get(status) or response.status
        headers = response.headers
        headers["Server"] = SERVER_HEADER
        if request.blueprint != cimi_blueprint.name:  # CIMI says its own media types
            headers["Accept"] = _ACCEPTED
        headers["X-Request-Id"] = request_id()
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        route = route_of(path)
        REQUESTS.labels(method, route, str(status)).inc()
        LATENCY.labels(method, route).observe(seconds)
        if log.isEnabledFor(logging.INFO):
            # The path as a JSON string: a %0A in it cannot start a forged log line.
            log.info("request method=%s path=%s status=%d duration_ms=%.1f",
                     method, json.dumps(path), status, seconds * 1000,
                     extra={"fields": {"method": method, "path": path, "route": route,
                                       "status": status,
                                       "duration_ms": round(seconds * 1000, 1)}})
        return response

    return app


def _read_body() -> None:
    """Read the whole body now (werkzeug keeps it): a broken chunked framing
    shows here as the WSGI server's parse error (gunicorn's ParseException) and
    is the client's 400, not a 500; a body too large stays a 413."""
    if request.content_length is None and "Transfer-Encoding" not in request.headers:
        return  # nothing to read
    try:
        request.get_data(cache=True)
    except HTTPException:
        raise
    except Exception as exc:  # whatever the WSGI server's reader raises
        raise BadRequest(f"the request body could not be read: {exc or 'broken framing'}"
                         ) from None


def _check_version(user_agent: str) -> None:
    versions = [(int(a), int(b)) for a, b in _VERSION_TOKEN.findall(user_agent)]
    if versions and max(versions) > _SUPPORTED_VERSION:
        wanted = ".".join(map(str, max(versions)))
        raise NotImplementedFeature(f"this server speaks OCCI {OCCI_VERSION}; the client asks "
                                    f"for OCCI {wanted}")


def _identify(authenticator: Authenticator, limiter: RateLimiter | None,
              limits: dict[str, Rule | None]) -> None:
    """Authenticate the request (401 otherwise), count it against its rate limit
    (429), and set the tenant scope it acts in."""
    environ, remote = request.environ, request.remote_addr
    socket = environ.get("gunicorn.socket")
    peer = socket.getpeercert() if isinstance(socket, ssl.SSLSocket) else None
    page = is_page()
    credentials = Credentials(headers=request.headers, remote_addr=remote,
                              peer_dn=peer_certificate_dn(peer),
                              session=request.cookies.get(SESSION_COOKIE) if page else None)
    try:
        principal = authenticator.authenticate(credentials)
    except Unauthorized:
        _count(limiter, f"address:{remote}", limits["anonymous"])
        if page:  # the page itself sends the browser to sign in, or refuses
            g.principal = None
            return
        raise
    if authenticator.methods:
        _count(limiter, f"user:{principal.name}", limits["authenticated"])
    else:
        _count(limiter, f"address:{remote}", limits["anonymous"])
    g.principal = principal
    g.scope = principal.scope(environ.get(_TENANT_KEY) or None)


def _count(limiter: RateLimiter | None, key: str, rule: Rule | None) -> None:
    if limiter is None or rule is None:
        return
    wait = limiter.hit(key, rule)
    if wait is not None:
        raise TooManyRequests(f"too many requests: at most {rule.requests} per {rule.seconds} s; "
                              f"try again in {wait:g} s",
                              headers={"Retry-After": str(max(1, math.ceil(wait)))})
