"""The marketplace's pages: entries (show N, filter, status, sort), one image
with every endorsement and the os_tpl it became, the endorsers, and an upload
form that says the site's verdict in words."""

from __future__ import annotations

import json

from flask import current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from occi_server.core import Mixin
from occi_server.errors import BadRequest, OCCIError
from occi_server.http.numbers import whole_number
from occi_server.http.tenancy import require_operator
from occi_server.http.web import pages
from occi_server.marketplace import SORT_KEYS, STATUSES, Entry, Marketplace
from occi_server.service import Service

blueprint = pages("market", "/marketplace")
PAGE_SIZES = (10, 25, 50, 100)
SORTS = {"-created": "created (newest first)", "created": "created (oldest first)",
         "title": "title", "endorser": "endorser", "identifier": "identifier", "kind": "kind",
         "status": "status", "-valid_until": "valid until (latest first)"}
DESCRIPTION_SHOWN = 120  # characters of the description a listing shows
MARKETPLACE_IDENTIFIER = "occi_server.marketplace.identifier"


def _service() -> Service:
    return current_app.extensions["occi.service"]


def _marketplace() -> Marketplace:
    return _service().marketplace


@blueprint.app_template_filter("endorser")
def endorser_label(entry: Entry) -> str:
    """The endorser as people read it: name and email; the subject when neither is given."""
    if entry.endorser_name and entry.endorser_email:
        return f"{entry.endorser_name} <{entry.endorser_email}>"
    return entry.endorser_name or entry.endorser_email or entry.endorser


@blueprint.app_template_filter("start")
def description_start(text: str) -> str:
    return text if len(text) <= DESCRIPTION_SHOWN else text[:DESCRIPTION_SHOWN].rstrip() + "\u2026"


@blueprint.get("/")
def entries() -> str:
    wanted = {"q": request.args.get("q", ""), "status": request.args.get("status", ""),
              "sort": request.args.get("sort", "-created")}
    if wanted["sort"].lstrip("-") not in SORT_KEYS:
        raise BadRequest(f"sort must be one of {', '.join(SORT_KEYS)} (- for descending)")
    limit = whole_number("limit", request.args.get("limit", "25"), least=1)
    if limit not in PAGE_SIZES:
        raise BadRequest(f"show {', '.join(map(str, PAGE_SIZES))} entries at a time")
    offset = whole_number("offset", request.args.get("offset", "0"))
    total, shown = _marketplace().entries(text=wanted["q"], status=wanted["status"],
                                          sort=wanted["sort"], limit=limit, offset=offset)

    def page_at(start: int) -> str:
        return url_for(".entries", **{k: v for k, v in wanted.items() if v}, limit=limit,
                       offset=start)

    return render_template(
        "marketplace/entries.html", entries=shown, total=total, offset=offset, limit=limit,
        wanted=wanted, statuses=STATUSES, sorts=SORTS, page_sizes=PAGE_SIZES,
        previous=page_at(max(0, offset - limit)) if offset else None,
        following=page_at(offset + limit) if offset + limit < total else None)


@blueprint.get("/images/<identifier>")
def image(identifier: str) -> str:
    endorsements = sorted(_marketplace().image(identifier), key=lambda e: e.created,
                          reverse=True)
    return render_template("marketplace/image.html", identifier=identifier,
                           endorsements=endorsements, os_tpl=_os_tpl(identifier),
                           operator=g.principal.admin)


@blueprint.post("/images/<identifier>/deprecate")
def deprecate(identifier: str) -> Response:
    require_operator()
    _marketplace().deprecate(identifier)
    return redirect(url_for(".image", identifier=identifier), code=303)


def _os_tpl(identifier: str) -> Mixin | None:
    """The os_tpl mixin the image is published as to this user, if it is."""
    service = _service()
    with service.store.transaction(write=False, scope=g.scope) as repo:
        model = service.model(repo)
    return next((mixin for mixin in model.mixins()
                 if any(a.name == MARKETPLACE_IDENTIFIER and a.default == identifier
                        for a in mixin.attributes)), None)


@blueprint.get("/endorsers")
def endorsers() -> str:
    return render_template("marketplace/endorsers.html", endorsers=_marketplace().endorsers())


@blueprint.route("/upload", methods=["GET", "POST"])
def upload() -> tuple[str, int] | str:
    if request.method == "GET":
        return render_template("marketplace/upload.html", verdict=None)
    pasted = request.form.get("document", "").strip()
    sent = request.files.get("file")
    text = sent.read().decode("utf-8", "replace") if sent and sent.filename else pasted
    try:
        if not text:
            raise BadRequest("choose a file or paste a signed entry")
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise BadRequest(f"this is not a signed entry in JSON: {exc}") from None
        entry, stored = _marketplace().upload(document)
    except OCCIError as exc:
        return render_template("marketplace/upload.html", verdict=None, refused=exc.message,
                               document=pasted), exc.status
    return render_template("marketplace/upload.html", verdict=entry, stored=stored)
