"""The marketplace's JSON API (described by the OpenAPI document it serves);
its pages are in http.web.marketplace."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from occi_server.errors import BadRequest
from occi_server.http.numbers import whole_number
from occi_server.http.tenancy import require_operator
from occi_server.marketplace import SORT_KEYS, STATUSES, Marketplace

blueprint = Blueprint("marketplace", __name__, url_prefix="/marketplace")
_ENTRY_SCHEMA = {"$ref": "#/components/schemas/Entry"}
_ERROR = {"description": "The reason, as {code, message}",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_PARAMETERS = [
    {"name": "q", "in": "query", "description": "Text in id, title, description, OS or endorser",
     "schema": {"type": "string"}},
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
    {"name": "endorser", "in": "query", "description": "Part of the endorser's subject",
     "schema": {"type": "string"}},
    {"name": "kind", "in": "query", "schema": {"type": "string", "enum": ["machine", "disk"]}},
    {"name": "sort", "in": "query", "description": "A field, '-' first for descending",
     "schema": {"type": "string", "enum": [p + k for k in SORT_KEYS for p in ("", "-")],
                "default": "-created"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                "maximum": 1000, "default": 25}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
]
_ID = [{"name": "identifier", "in": "path", "required": True, "schema": {"type": "string"}}]

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "occi-server marketplace", "version": "1",
             "description": "Endorsed, signed metadata of machine and disk images."},
    "paths": {
        "/marketplace/api/entries": {
            "get": {"summary": "List entries", "parameters": _PARAMETERS, "responses": {
                "200": {"description": "A page of entries", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "total": {"type": "integer"},
                        "entries": {"type": "array", "items": _ENTRY_SCHEMA}}}}}},
                "400": _ERROR}},
            "post": {"summary": "Upload a signed entry",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/SignedEntry"}}}},
                     "responses": {"201": {"description": "Stored; Location names it"},
                                   "200": {"description": "A newer entry of this endorser "
                                                          "is kept already"},
                                   "400": _ERROR}}},
        "/marketplace/api/entries/{identifier}": {
            "get": {"summary": "Every endorsement of one image", "parameters": _ID,
                    "responses": {"200": {"description": "The image's entries"},
                                  "404": _ERROR}}},
        "/marketplace/api/entries/{identifier}/deprecate": {
            "post": {"summary": "Deprecate an image at this site", "parameters": _ID,
                     "responses": {"200": {"description": "Deprecated"}, "404": _ERROR}}},
    },
    "components": {"schemas": {
        "Error": {"type": "object", "properties": {"code": {"type": "integer"},
                                                   "message": {"type": "string"}}},
        "Entry": {"type": "object", "properties": {
            "identifier": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)},
            "kind": {"type": "string"}, "title": {"type": "string"},
            "description": {"type": "string"}, "os": {"type": "string"},
            "os_version": {"type": "string"}, "architecture": {"type": "string"},
            "location": {"type": "string"}, "size": {"type": "integer"},
            "checksums": {"type": "object", "additionalProperties": {"type": "string"}},
            "endorser": {"type": "object", "properties": {
                "subject": {"type": "string"}, "name": {"type": "string"},
                "email": {"type": "string"}}},
            "created": {"type": "string", "format": "date-time"},
            "valid_until": {"type": "string", "format": "date-time"},
            "deprecated": {"type": "boolean"}}},
        "SignedEntry": {"type": "object", "required": ["metadata", "signature"], "properties": {
            "metadata": {"type": "object", "description": "The entry's fields as signed"},
            "signature": {"type": "object", "required": ["algorithm", "value", "certificates"],
                          "properties": {"algorithm": {"type": "string", "enum": ["sha256"]},
                                         "value": {"type": "string", "format": "byte"},
                                         "certificates": {"type": "array",
                                                          "items": {"type": "string"}}}}}},
    }},
}


def _marketplace() -> Marketplace:
    from flask import current_app
    return current_app.extensions["occi.service"].marketplace


def _integer(name: str, default: int) -> int:
    return whole_number(name, request.args.get(name, str(default)))


@blueprint.get("/api/entries")
def list_entries() -> Response:
    total, entries = _marketplace().entries(
        text=request.args.get("q", ""), status=request.args.get("status", ""),
        endorser=request.args.get("endorser", ""), kind=request.args.get("kind", ""),
        sort=request.args.get("sort", "-created"), limit=_integer("limit", 25),
        offset=_integer("offset", 0))
    return jsonify({"total": total, "entries": [e.summary() for e in entries]})


@blueprint.post("/api/entries")
def upload_entry() -> Response:
    document = request.get_json(force=True, silent=True)
    if document is None:
        raise BadRequest("the body must be a signed entry in JSON")
    entry, stored = _marketplace().upload(document)
    response = jsonify({**entry.summary(), "stored": stored})
    response.status_code = 201 if stored else 200
    response.headers["Location"] = url_for("marketplace.show_entry",
                                           identifier=entry.identifier, _external=True)
    return response


@blueprint.get("/api/entries/<identifier>")
def show_entry(identifier: str) -> Response:
    entries = _marketplace().image(identifier)
    return jsonify({"identifier": identifier, "endorsements": [e.summary() for e in entries]})


@blueprint.post("/api/entries/<identifier>/deprecate")
def deprecate_entry(identifier: str) -> Response:
    require_operator()
    _marketplace().deprecate(identifier)
    return jsonify({"identifier": identifier, "deprecated": True})


@blueprint.get("/api/openapi.json")
def openapi() -> Response:
    return jsonify(OPENAPI)
