"""create_app(config): the Flask application."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from occi_server.backends import load_backends
from occi_server.backends.base import Backends
from occi_server.cimi.views import blueprint as cimi_blueprint
from occi_server.config import Config
from occi_server.errors import BadRequest, Unauthorized
from occi_server.http.answers import AnswerPath, Answers
from occi_server.http.errors import register_error_handlers
from occi_server.http.gate import STATUS_LINES, Gate
from occi_server.http.logs import request_id
from occi_server.http.marketplace import blueprint as marketplace_blueprint
from occi_server.http.ops import blueprint as ops_blueprint
from occi_server.http.tenancy import blueprint as tenancy_blueprint
from occi_server.http.views import dispatch
from occi_server.http.web import is_page
from occi_server.http.web.marketplace import blueprint as marketplace_pages
from occi_server.http.web.portal import blueprint as portal_pages
from occi_server.identity import Authenticator, RateLimiter
from occi_server.identity.ratelimit import FileCounters, Rule, StoreCounters
from occi_server.identity.sessions import SESSION_COOKIE
from occi_server.service import Reconciler, Service
from occi_server.store import Store

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]


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

    gate = Gate(authenticator, limiter, limits)
    answers = Answers(config.answer_cache_bytes)
    app.extensions["occi.answers"] = answers
    app.wsgi_app = AnswerPath(app.wsgi_app, gate, service, answers)  # type: ignore[method-assign]

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        gate.check_version(request.environ)
        _identify(gate)
        _read_body()

    @app.after_request
    def _finish(response: Response) -> Response:
        status, rid = response.status_code, request_id()
        response.status = STATUS_LINES.get(status) or response.status
        gate.sign(response.headers, rid, occi=request.blueprint != cimi_blueprint.name)
        gate.account(request.method, request.path, status,
                     g.get("started", time.perf_counter()), rid)
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


def _identify(gate: Gate) -> None:
    """Authenticate the request (401 otherwise), count it against its rate limit
    (429), and set the tenant scope it acts in."""
    environ, remote, page = request.environ, request.remote_addr, is_page()
    try:
        principal = gate.authenticate(environ, request.headers, remote,
                                      request.cookies.get(SESSION_COOKIE) if page else None)
    except Unauthorized:
        gate.count(None, remote)
        if page:  # the page itself sends the browser to sign in, or refuses
            g.principal = None
            return
        raise
    gate.count(principal, remote)
    g.principal = principal
    g.scope = gate.scope(principal, environ)
