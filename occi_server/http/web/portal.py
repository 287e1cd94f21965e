"""The self-service pages: one's own computes (state, addresses, the ssh line,
start/stop/restart, the console log), a form to start one from an image,
volumes, networks, the tenant's quota usage and jobs. Everything goes through
the service layer's units of work, as OCCI requests do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from occi_server.core import Entity, Kind, Model
from occi_server.core.specs import ActionSpec, EntitySpec, Filter, LinkSpec
from occi_server.errors import BadRequest, NotFound, Unauthorized
from occi_server.http.urls import base_url
from occi_server.http.web import TENANT_COOKIE, pages
from occi_server.identity import Authenticator
from occi_server.identity.sessions import SESSION_COOKIE, SESSION_SECONDS
from occi_server.kinds.infrastructure import (
    COMPUTE,
    IPNETWORK,
    NETWORK,
    NETWORKINTERFACE,
    OS_TPL,
    RESOURCE_TPL,
    SSH_KEY,
    STORAGE,
    STORAGE_SIZE,
    STORAGELINK,
    USER_DATA,
)
from occi_server.rendering import RenderContext
from occi_server.service import Service, Work

blueprint = pages("portal", "/my")
# A page waits this long for what it asked (a simulated create is done by then;
# a real guest is still booting, and the page shows it `waiting`).
WAIT_SECONDS = 2.0
GUEST_ACTIONS = ("start", "stop", "restart", "suspend")
ADDRESS = "occi.networkinterface.address"


def _service() -> Service:
    return current_app.extensions["occi.service"]


@contextmanager
def _work(*, write: bool) -> Iterator[Work]:
    service = _service()
    context = RenderContext(model=service.builtin,
                            base_url=base_url())
    with service.work(write=write, local_path=context.local_path, scope=g.scope,
                      wait=WAIT_SECONDS if write else None) as work:
        yield work


def _local(target: str | None, default: str) -> str:
    """A page of this site to go to next (never another site's)."""
    if target and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return default


def _back() -> Response:
    return redirect(_local(request.form.get("back"), url_for(".overview")), code=303)


# ------------------------------------------------------------------ signing in
@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | str | tuple[str, int]:
    authenticator: Authenticator = current_app.extensions["occi.authenticator"]
    target = _local(request.values.get("next"), url_for(".overview"))
    if request.method == "GET":
        if g.principal is not None and request.cookies.get(SESSION_COOKIE) is None:
            return redirect(target)  # a certificate, or a site without sign-in
        return render_template("portal/sign_in.html", methods=authenticator.methods,
                               target=target)
    try:
        token = request.form.get("token", "").strip()
        if token:
            cookie = authenticator.sign_in_token(token)
        else:
            cookie = authenticator.sign_in(request.form.get("user", ""),
                                           request.form.get("password", ""))
    except Unauthorized as exc:
        return render_template("portal/sign_in.html", methods=authenticator.methods,
                               target=target, refused=exc.message), 401
    response = redirect(target, code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True,
                        samesite="Strict", secure=request.is_secure, path="/")
    response.delete_cookie(TENANT_COOKIE, path="/")
    return response


@blueprint.post("/sign-out")
def sign_out() -> Response:
    response = redirect(url_for(".sign_in"), code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(TENANT_COOKIE, path="/")
    return response


@blueprint.post("/tenant")
def choose_tenant() -> Response:
    tenant = request.form.get("tenant", "")
    g.principal.scope(tenant)  # refused unless the caller may act for it
    response = _back()
    response.set_cookie(TENANT_COOKIE, tenant, httponly=True, samesite="Strict",
                        secure=request.is_secure, path="/")
    return response


# ------------------------------------------------------------------ reading
@dataclass
class Machine:
    """A compute as its owner's pages show it."""

    entity: Entity
    image: str
    addresses: list[str]
    ssh: str
    actions: list[str]
    volumes: list[Entity] = field(default_factory=list)  # its storage links

    @property
    def state(self) -> str:
        return str(self.entity.attributes.get("occi.compute.state", ""))


def _machine(work: Work, entity: Entity) -> Machine:
    model = work.model
    images = [model.mixin(m) for m in entity.mixins if model.is_mixin_of(m, OS_TPL.type_id)]
    image = next((m for m in images if m is not None), None)
    addresses = [str(link.attributes[ADDRESS]) for link in entity.links
                 if link.kind == NETWORKINTERFACE.type_id and link.attributes.get(ADDRESS)]
    user = str(image.info.get("login_user", "")) if image is not None else ""
    ssh = f"ssh {user}@{addresses[0]}" if user and addresses else \
        f"ssh {addresses[0]}" if addresses else ""
    legal = {a.rpartition("#")[2] for a in entity.actions}
    return Machine(entity=entity, image=(image.title or image.term) if image else "",
                   addresses=addresses, ssh=ssh,
                   actions=[term for term in GUEST_ACTIONS if term in legal],
                   volumes=[link for link in entity.links if link.kind == STORAGELINK.type_id])


def _members(work: Work, kind: Kind) -> list[Entity]:
    collection = work.model.kind(kind.type_id)
    assert collection is not None
    return sorted(work.detailed(work.members(collection, kind.location or "", Filter())),
                  key=lambda e: (e.title or "", e.id))


def _templates(model: Model, parent: str) -> list[Any]:
    return sorted((m for m in model.mixins() if m.type_id != parent
                   and model.is_mixin_of(m.type_id, parent)), key=lambda m: m.title or m.term)


def _busy(*states: Any) -> bool:
    return any(state == "waiting" for state in states)


@blueprint.get("/")
def overview() -> str:
    service = _service()
    with _work(write=False) as work:
        machines = [_machine(work, e) for e in _members(work, COMPUTE)]
        volumes, networks = _members(work, STORAGE), _members(work, NETWORK)
    attached = {link.target: machine for machine in machines for link in machine.volumes}
    jobs = service.jobs(g.scope, state=None, limit=10)
    return render_template(
        "portal/overview.html", machines=machines, volumes=volumes, networks=networks,
        attached=attached, quota=service.quota_report(g.scope, g.scope.tenant), jobs=jobs,
        refresh=_busy(*(m.state for m in machines),
                      *(v.attributes.get("occi.storage.state") for v in volumes))
        or any(job["state"] == "running" for job in jobs))


@blueprint.get("/new")
def new_machine() -> str:
    with _work(write=False) as work:
        images = _templates(work.model, OS_TPL.type_id)
        flavours = _templates(work.model, RESOURCE_TPL.type_id)
        networks = _members(work, NETWORK)
        volumes = _free(work, _members(work, STORAGE))
    return render_template("portal/new.html", images=images, flavours=flavours,
                           networks=networks, volumes=volumes)


@blueprint.get("/compute/<entity_id>")
def machine(entity_id: str) -> str:
    with _work(write=False) as work:
        entity = _at(work, f"{COMPUTE.location}{entity_id}", COMPUTE)
        shown = _machine(work, work.detailed([work.observed(entity)])[0])
        volumes = _members(work, STORAGE)
        free = _free(work, volumes)
        titles = {v.location: v.title or v.id for v in volumes}
        try:
            console = work.console(entity)
        except NotFound:
            console = None
    return render_template("portal/machine.html", machine=shown, free=free, titles=titles,
                           console=console, refresh=_busy(shown.state))


def _free(work: Work, volumes: list[Entity]) -> list[Entity]:
    """The volumes no compute has attached."""
    attached = {link.target for compute in _members(work, COMPUTE) for link in compute.links
                if link.kind == STORAGELINK.type_id}
    return [volume for volume in volumes if volume.location not in attached]


def _at(work: Work, location: str, kind: Kind) -> Entity:
    entity = work.at(location)
    if entity is None or entity.kind != kind.type_id:
        raise NotFound(f"you have no {kind.term} at {location}")
    return entity


def _owned(work: Work, location: str) -> Entity:
    entity = work.at(location)
    if entity is None:
        raise NotFound(f"you have nothing at {location}")
    return entity


# ------------------------------------------------------------------ changing
@blueprint.post("/compute")
def create_machine() -> Response:
    form = request.form
    mixins = [form.get("image", ""), form.get("flavour", "")]
    if not all(mixins):
        raise BadRequest("choose an image and a resource template")
    attributes: dict[str, Any] = {}
    if form.get("title", "").strip():
        attributes["occi.core.title"] = form["title"].strip()
    if form.get("ssh_key", "").strip():
        mixins.append(SSH_KEY.type_id)
        attributes["occi.credentials.ssh.publickey"] = form["ssh_key"].strip()
    if form.get("user_data", "").strip():
        mixins.append(USER_DATA.type_id)
        attributes["occi.compute.userdata"] = form["user_data"]
    links = [LinkSpec(target=form["network"], kind=NETWORKINTERFACE.type_id)] \
        if form.get("network") else []
    if form.get("volume"):
        links.append(LinkSpec(target=form["volume"], kind=STORAGELINK.type_id))
    with _work(write=True) as work:
        [created] = work.create(_kind(work, COMPUTE), [EntitySpec(
            kind=COMPUTE.type_id, mixins=mixins, attributes=attributes, links=links)])
    return redirect(url_for(".machine", entity_id=created.id), code=303)


@blueprint.post("/storage")
def create_volume() -> Response:
    attributes: dict[str, Any] = {STORAGE_SIZE: request.form.get("size", "")}
    if request.form.get("title", "").strip():
        attributes["occi.core.title"] = request.form["title"].strip()
    with _work(write=True) as work:
        work.create(_kind(work, STORAGE), [EntitySpec(kind=STORAGE.type_id,
                                                      attributes=attributes)])
    return _back()


@blueprint.post("/network")
def create_network() -> Response:
    attributes: dict[str, Any] = {}
    mixins = []
    if request.form.get("title", "").strip():
        attributes["occi.core.title"] = request.form["title"].strip()
    if request.form.get("address", "").strip():
        mixins.append(IPNETWORK.type_id)
        attributes["occi.network.address"] = request.form["address"].strip()
    with _work(write=True) as work:
        work.create(_kind(work, NETWORK), [EntitySpec(kind=NETWORK.type_id, mixins=mixins,
                                                      attributes=attributes)])
    return _back()


@blueprint.post("/act")
def act() -> Response:
    """An action on one of one's resources (start, stop, snapshot…)."""
    term = request.form.get("action", "")
    parameters = {"name": request.form["name"]} if request.form.get("name") else {}
    with _work(write=True) as work:
        work.trigger(_owned(work, request.form.get("location", "")),
                     ActionSpec(action=None, attributes=parameters), term)
    return _back()


@blueprint.post("/attach")
def attach() -> Response:
    with _work(write=True) as work:
        compute = _at(work, request.form.get("compute", ""), COMPUTE)
        volume = _at(work, request.form.get("volume", ""), STORAGE)
        work.create(_kind(work, STORAGELINK), [EntitySpec(
            kind=STORAGELINK.type_id, source=compute.location, target=volume.location)])
    return _back()


@blueprint.post("/delete")
def delete() -> Response:
    """Delete a resource, or a link (detaching a volume)."""
    with _work(write=True) as work:
        work.delete(_owned(work, request.form.get("location", "")))
    return _back()


@blueprint.get("/<path:rest>")
def missing(rest: str) -> str:
    """A page that is not there is a page that says so (not OCCI's plain answer)."""
    raise NotFound(f"there is no page /my/{rest}")


def _kind(work: Work, kind: Kind) -> Kind:
    found = work.model.kind(kind.type_id)
    assert found is not None
    return found
