"""The site in a browser: server-rendered pages (Jinja2, escaped by default)
over the same service layer as OCCI. Pages need no JavaScript; a few lines of
it only spare a click.

Every page is behind the API's authentication (a signed-in session stands for
the credentials; see identity.sessions), except signing in itself. Every form
is protected against cross-site request forgery twice: a token in the form
that must match a cookie only this site's pages can read (double submit), and
the browser's own Sec-Fetch-Site / Origin saying where the form came from."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException

from occi_server.errors import Forbidden, OCCIError, Unauthorized
from occi_server.http.errors import occi_error
from occi_server.http.tenancy import TENANT_HEADER

CSRF_COOKIE = "occi_csrf"
TENANT_COOKIE = "occi_tenant"
# Pages reachable before signing in.
OPEN_ENDPOINTS = frozenset({"portal.sign_in", "portal.sign_out"})
BLUEPRINTS: set[str] = set()


def pages(name: str, url_prefix: str) -> Blueprint:
    """A blueprint of web pages, guarded as the module says."""
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix, template_folder="templates")
    BLUEPRINTS.add(name)
    blueprint.before_request(_guard)
    blueprint.after_request(_keep_csrf_cookie)
    blueprint.register_error_handler(OCCIError, _error_page)
    blueprint.register_error_handler(HTTPException, _werkzeug_error_page)
    blueprint.app_context_processor(lambda: {"csrf_token": csrf_token, "signed_in": signed_in})
    return blueprint


def is_page() -> bool:
    """Whether the request is for a web page (sessions count there only)."""
    return request.blueprint in BLUEPRINTS


def signed_in() -> bool:
    return g.get("principal") is not None


def csrf_token() -> str:
    if "csrf" not in g:
        g.csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    return str(g.csrf)


def _guard() -> Response | None:
    if request.method == "POST":
        _check_origin()
    if g.get("principal") is None:
        if request.endpoint in OPEN_ENDPOINTS:
            return None
        if request.method == "GET":
            return redirect(url_for("portal.sign_in", next=request.full_path.rstrip("?")))
        raise Unauthorized("sign in first")
    tenant = request.cookies.get(TENANT_COOKIE)
    if tenant and not request.headers.get(TENANT_HEADER) and tenant in g.principal.tenants:
        g.scope = g.principal.scope(tenant)
    return None


def _check_origin() -> None:
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("this form was sent from another site; use the site's own pages")
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise Forbidden("this form was sent from another site; use the site's own pages")
    sent, kept = request.form.get("csrf", ""), request.cookies.get(CSRF_COOKIE, "")
    if not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
        raise Forbidden("the form has expired or did not come from this site's page; "
                        "load the page again and resend it")


def _keep_csrf_cookie(response: Response) -> Response:
    token = csrf_token()
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict",
                            secure=request.is_secure, path="/")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
    return response


def _werkzeug_error_page(error: HTTPException) -> Response | tuple[str, int, dict[str, str]]:
    return _error_page(occi_error(error, current_app.config["MAX_CONTENT_LENGTH"]))


def _error_page(error: OCCIError) -> Response | tuple[str, int, dict[str, str]]:
    if isinstance(error, Unauthorized) and request.method == "GET":
        return redirect(url_for("portal.sign_in", next=request.full_path.rstrip("?")))
    # No WWW-Authenticate: the browser's own password prompt is not this site's sign-in.
    headers = {k: v for k, v in error.headers.items() if k != "WWW-Authenticate"}
    return render_template("error.html", error=error), error.status, headers
