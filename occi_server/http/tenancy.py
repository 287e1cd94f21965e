"""Who am I, quotas, and the federation's view of this endpoint (GLUE 2.1), as JSON."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from occi_server.errors import Forbidden
from occi_server.service import Service

# The tenant a request acts for, when its caller belongs to several.
TENANT_HEADER = "X-Tenant"

blueprint = Blueprint("tenancy", __name__)


def _service() -> Service:
    return current_app.extensions["occi.service"]


def require_operator() -> None:
    if not g.principal.admin:
        raise Forbidden("only the site's operators may do this")


@blueprint.get("/api/whoami")
def whoami() -> Response:
    principal = g.principal
    return jsonify({"name": principal.name, "method": principal.method,
                    "tenants": list(principal.tenants), "tenant": g.scope.tenant,
                    "operator": principal.admin, "fqans": list(principal.fqans)})


@blueprint.get("/api/quota")
def quota() -> Response:
    """The quotas of the tenant acted for (?tenant=: another visible one)."""
    tenant = request.args.get("tenant") or g.scope.tenant
    return jsonify({"tenant": tenant, "quotas": _service().quota_report(g.scope, tenant)})


@blueprint.get("/glue")
def glue() -> Response:
    return jsonify(_service().glue(g.scope))
