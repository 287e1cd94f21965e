"""The CIMI interface at /cimi/ (DSP0263 2.0): the entry point, collections
with their queries, members, operations and jobs, in JSON or XML, over the
same service as OCCI (authentication, tenancy, quotas, rate limits and jobs
are the same; a machine is the compute it is in OCCI)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, request

from occi_server import errors
from occi_server.cimi import creates, resources, xml
from occi_server.cimi.query import Query, applied, expanded, read, selection
from occi_server.cimi.resources import (
    ADDRESS,
    BY_COLLECTION,
    BY_SEGMENT,
    JOB,
    MACHINE,
    MACHINE_CONFIGURATION,
    MACHINE_IMAGE,
    MACHINE_INTERFACE,
    MACHINE_PARTS,
    MACHINE_TEMPLATE,
    MACHINE_VOLUME,
    NETWORK_TYPE,
    RESOURCE_METADATA,
    SCHEMA,
    TOP_LEVEL,
    VOLUME,
    CimiType,
    Resource,
)
from occi_server.core import Entity, Mixin
from occi_server.core.specs import Filter
from occi_server.kinds.infrastructure import NETWORKINTERFACE, STORAGELINK
from occi_server.rendering import RenderContext
from occi_server.service import Service, Work
from occi_server.service.jobs import state_attribute

blueprint = Blueprint("cimi", __name__, url_prefix="/cimi")
VERSION = "2.0"
JSON, XML = "application/json", "application/xml"
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"]
RENDERERS: dict[str, Callable[..., Resource]] = {
    MACHINE.name: resources.machine, VOLUME.name: resources.volume,
    NETWORK_TYPE.name: resources.network, ADDRESS.name: resources.address,
}
BY_KIND = {t.kind.type_id: t for t in TOP_LEVEL if t.kind is not None}
CREATES: dict[str, Callable[[Resource, creates.Refs], Any]] = {
    MACHINE.name: creates.machine_create, VOLUME.name: creates.volume_create,
    NETWORK_TYPE.name: creates.network_create,
    ADDRESS.name: lambda body, _: creates.address_create(body),
}


@dataclass
class Answer:
    status: int
    type_name: str | None = None  # the XML root element (None: no body)
    body: Resource | None = None
    members: tuple[str, str] | None = None  # a collection's: its array, its members' type
    headers: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ plumbing
def _service() -> Service:
    return current_app.extensions["occi.service"]


def _prefix() -> str:
    """Where the site serves CIMI (cimi_path), as /name."""
    return str(_service().config.cimi_path).rstrip("/")


def base_uri() -> str:
    return request.host_url.rstrip("/") + request.script_root + _prefix() + "/"


def _absolute(href: str) -> str:
    return base_uri() + href


def _context() -> RenderContext:
    service = _service()
    return RenderContext(model=service.builtin,
                         base_url=request.host_url.rstrip("/") + request.script_root)


def resolve(href: str) -> tuple[str, str]:
    """An href (absolute, /cimi/…, or relative to baseURI) as its first
    segment and the rest."""
    path = urlsplit(href).path if "://" in href else href
    for prefix in (urlsplit(base_uri()).path, _prefix() + "/"):
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    segment, _, rest = path.strip("/").partition("/")
    return segment, rest


def _media() -> str:
    """JSON or XML: as `$format` says (DSP0263 4.1.6.5), else as Accept does."""
    asked = request.args.get("$format")
    if asked is not None:
        media = {"json": JSON, "xml": XML, JSON: JSON, XML: XML}.get(asked.lower())
        if media is None:
            raise errors.BadRequest(f"$format must be json or xml, not {asked!r}")
        return media
    accepted = request.accept_mimetypes
    if not accepted or not request.headers.get("Accept"):
        return JSON
    best = accepted.best_match([JSON, XML])
    if best is None:
        raise errors.NotAcceptable(f"CIMI answers in {JSON} or {XML}")
    return best


def _check_version() -> None:
    asked = request.headers.get("CIMI-Specification-Version")
    if asked and not any(v.strip().split(".")[0] == "2" for v in asked.split(",")):
        raise errors.BadRequest(f"this server speaks CIMI {VERSION}; the request asks for "
                                f"{asked}")


def _body(*, required: bool = True) -> dict[str, Any] | None:
    data = request.get_data(cache=True)
    if not data.strip():
        if required:
            raise errors.BadRequest("the request has no body")
        return None
    media = (request.mimetype or JSON).lower()
    if media in (JSON, "text/json"):
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise errors.BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise errors.BadRequest("the body must be a JSON object")
        return body
    if media in (XML, "text/xml"):
        return xml.parse(data)
    raise errors.UnsupportedMediaType(f"CIMI bodies are {JSON} or {XML}, not {media}")


def _respond(answer: Answer) -> Response:
    media = _media()
    body = None if answer.body is None else resources.compact(answer.body)
    if body is None:
        response = Response(b"", status=answer.status)
    elif media == XML:
        response = Response(xml.render(answer.type_name or "Resource", body, answer.members),
                            status=answer.status, mimetype=XML)
    else:
        response = Response(json.dumps(body, indent=2), status=answer.status, mimetype=JSON)
    response.headers["CIMI-Specification-Version"] = VERSION
    for name, value in answer.headers.items():
        response.headers[name] = value
    return response


def _refs(work: Work) -> creates.Refs:
    def stored(cimi_type: CimiType, member: str) -> Resource | None:
        row = work.repo.template(cimi_type.name, member)
        return None if row is None else row["document"]
    return creates.Refs(work.model, resolve, stored)


@contextmanager
def _work(*, write: bool) -> Iterator[Work]:
    with _service().work(write=write, local_path=_context().local_path,
                         scope=g.scope) as work:
        yield work


# ------------------------------------------------------------------ errors
def error_response(error: errors.OCCIError) -> Response:
    """An error as CIMI answers it: its status, and a body saying why."""
    body = {"status": error.status, "message": error.message}
    try:
        media = _media()
    except errors.OCCIError:
        media = JSON
    if media == XML:
        response = Response(xml.render("Error", body), status=error.status, mimetype=XML)
    else:
        response = Response(json.dumps(body), status=error.status, mimetype=JSON)
    response.headers["CIMI-Specification-Version"] = VERSION
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


@blueprint.before_request
def _before() -> None:
    _check_version()
    _media()


# ------------------------------------------------------------------ reading
def _busy_operation(work: Work, entity: Entity) -> str | None:
    if entity.attributes.get(state_attribute(entity)) != "waiting":
        return None
    running = work.repo.running_jobs(entity.id)
    return running[0]["operation"] if running else None


def rendered(work: Work, entity: Entity) -> Resource:
    """A machine, volume, network or address as CIMI shows it."""
    cimi_type = BY_KIND[entity.kind]
    return RENDERERS[cimi_type.name](entity, bool(work.changeable([entity])),
                                     _busy_operation(work, entity))


def _member(work: Work, cimi_type: CimiType, member: str) -> Entity:
    assert cimi_type.kind is not None
    entity = work.at(f"{cimi_type.kind.location}{member}") if "/" not in member else None
    if entity is None:
        raise errors.NotFound(f"no {cimi_type.name} {cimi_type.segment}/{member}")
    return entity


def _parts(work: Work, machine: Entity, part: CimiType) -> list[Resource]:
    link_kind = STORAGELINK if part is MACHINE_VOLUME else NETWORKINTERFACE
    changeable = bool(work.changeable([machine]))
    return [resources.machine_part(machine, link, changeable, _busy_operation(work, link))
            for link in work.repo.links_from([machine.id])[machine.id]
            if link.kind == link_kind.type_id]


def _part_collection(work: Work, machine: Entity, part: CimiType, query: Query) -> Resource:
    count, chosen = applied(query, _parts(work, machine, part))
    href = f"{resources.href_of(MACHINE, machine)}/{part.collection}"
    operations = ["add", "insert", "remove"] if part is MACHINE_VOLUME else ["add"]
    return {"resourceURI": part.collection_uri, "id": href, "count": count,
            part.members: [selection(query, m) for m in chosen],
            "operations": [{"rel": rel, "href": href} for rel in operations]
            if work.changeable([machine]) else []}


def _members(work: Work, cimi_type: CimiType, query: Query) -> list[Resource]:
    if cimi_type is MACHINE_CONFIGURATION:
        return resources.machine_configurations(work.model)
    if cimi_type is MACHINE_IMAGE:
        return resources.machine_images(work.model, _context().absolute)
    if cimi_type is JOB:
        return [resources.job(record, _type_at) for record in work.repo.jobs(limit=1000)]
    if cimi_type is RESOURCE_METADATA:
        return resources.metadata()
    if cimi_type.kept:
        return [resources.kept(cimi_type, row) for row in work.repo.templates(cimi_type.name)]
    assert cimi_type.kind is not None
    entities = work.detailed(work.members(cimi_type.kind, cimi_type.kind.location, Filter()))
    found = []
    for entity in entities:
        resource = rendered(work, entity)
        if cimi_type is MACHINE:
            resource = expanded(query, resource, _machine_expansions(work, entity))
        found.append(resource)
    return found


def _machine_expansions(work: Work, entity: Entity) -> dict[str, Callable[[], Any]]:
    return {part.collection: (lambda part=part: _part_collection(work, entity, part, Query()))
            for part in MACHINE_PARTS.values()}


def _type_at(location: str) -> CimiType | None:
    """The CIMI type of the entity at an OCCI location."""
    return next((t for t in TOP_LEVEL if t.kind is not None and t.kind.location
                 and location.startswith(t.kind.location)), None)


def _query() -> Query:
    """The collection query of the URL, or (a search by PUT, as SixSq's
    clients send it) of a form body."""
    if request.method == "PUT" and request.mimetype == "application/x-www-form-urlencoded":
        return read(request.form.to_dict(flat=False))
    return read(request.args.to_dict(flat=False))


# ------------------------------------------------------------------ routes
@blueprint.route("/", methods=["GET", "HEAD"])
@blueprint.route("/cloudEntryPoint", methods=["GET", "HEAD"])
@blueprint.route("/cloud-entry-point", methods=["GET", "HEAD"])
def entry_point() -> Response:
    config = _service().config
    body: Resource = {
        "resourceURI": SCHEMA + "CloudEntryPoint", "id": base_uri(),
        "name": config.effective_site_name,
        "description": "IaaS cloud: the same machines, volumes and networks as its OCCI "
                       "interface",
        "baseURI": base_uri(),
        **{t.collection: {"href": t.collection} for t in TOP_LEVEL},
        "operations": [],
    }
    return _respond(Answer(200, "CloudEntryPoint", body))


@blueprint.route("/<collection>", methods=METHODS)
def collection(collection: str) -> Response:
    cimi_type = BY_COLLECTION.get(collection)
    if cimi_type is None:
        raise errors.NotFound(f"no CIMI collection {collection}; the entry point lists them")
    if request.method in ("GET", "HEAD", "PUT"):
        query = _query()
        with _work(write=False) as work:
            count, chosen = applied(query, _members(work, cimi_type, query))
        body: Resource = {
            "resourceURI": cimi_type.collection_uri, "id": collection, "count": count,
            cimi_type.members: [selection(query, member) for member in chosen],
            "operations": [{"rel": "add", "href": collection}] if cimi_type.creatable else [],
        }
        return _respond(Answer(200, cimi_type.name + "Collection", body,
                               members=(cimi_type.members, cimi_type.name)))
    if request.method == "POST" and cimi_type.creatable:
        return _respond(_create(cimi_type))
    raise errors.MethodNotAllowed(f"{request.method} is not defined on {collection}",
                                  ["GET", "HEAD", "PUT"]
                                  + (["POST"] if cimi_type.creatable else []))


def _create(cimi_type: CimiType) -> Answer:
    body = _body()
    assert body is not None
    if cimi_type is MACHINE_IMAGE:
        return _capture(body)
    if cimi_type.kept:
        return _keep(cimi_type, body)
    assert cimi_type.kind is not None
    with _work(write=True) as work:
        spec = CREATES[cimi_type.name](body, _refs(work))
        created = work.create(cimi_type.kind, [spec])[0]
        job_id = work.job.id if work.job is not None else None
    return _outcome(created.location, job_id, created=True)


def _keep(cimi_type: CimiType, body: Resource) -> Answer:
    """A template the tenant keeps for later creates."""
    with _work(write=True) as work:
        refs = _refs(work)
        name, description, document = creates.kept_document(cimi_type, body, refs)
        if cimi_type is MACHINE_TEMPLATE:  # what it links to exists now, as for a create
            for link in creates.machine_spec(document, refs).links:
                work.entity_at(link.target or "", "the network, address or volume")
        template_id = work.repo.insert_template(cimi_type.name, name, description, document)
        row = work.repo.template(cimi_type.name, template_id)
    assert row is not None
    kept = resources.kept(cimi_type, row)
    return Answer(201, cimi_type.name, kept, headers={"Location": _absolute(kept["id"])})


def _kept_member(cimi_type: CimiType, member: str) -> Answer:
    """GET, PUT (name and description) or DELETE a kept template."""
    method = request.method
    body = _body() if method == "PUT" else None
    with _work(write=method in ("PUT", "DELETE")) as work:
        if work.repo.template(cimi_type.name, member) is None:
            raise errors.NotFound(f"no {cimi_type.name} {cimi_type.segment}/{member}")
        if method == "DELETE":
            work.repo.delete_template(cimi_type.name, member)
            return Answer(200)
        if method == "PUT":
            assert body is not None
            work.repo.update_template(cimi_type.name, member, **creates.kept_edit(body))
        elif method not in ("GET", "HEAD"):
            raise errors.MethodNotAllowed(f"{method} is not defined on a {cimi_type.name}",
                                          ["GET", "HEAD", "PUT", "DELETE"])
        row = work.repo.template(cimi_type.name, member)
    assert row is not None
    return Answer(200, cimi_type.name, resources.kept(cimi_type, row))


def _capture(body: Resource) -> Answer:
    """A new MachineImage from a machine's disk (OCCI's save)."""
    with _work(write=True) as work:
        member, spec = creates.image_capture(body, _refs(work))
        machine = _member(work, MACHINE, member)
        made = work.trigger(machine, spec, "save")
        job_id = work.job.id if work.job is not None else None
    assert isinstance(made, Mixin)
    headers = {"Location": _absolute(f"{MACHINE_IMAGE.segment}/{made.term}")}
    if job_id is not None:
        headers["CIMI-Job-URI"] = _absolute(f"{JOB.segment}/{job_id}")
    with _work(write=False) as work:
        ready = work.model.get(made.type_id) is not None
    return Answer(201 if ready else 202, MACHINE_IMAGE.name, resources.machine_image(
        made.term, made.title, _context().absolute(made.location or ""),
        "AVAILABLE" if ready else "CREATING"), headers=headers)


def _outcome(location: str, job_id: str | None, *, created: bool = False,
             show: Callable[[Work, Entity], tuple[str, Resource]] | None = None) -> Answer:
    """The answer once a change's job ended or was handed off: 201 or 200
    with the resource, or 202 while its job goes on; CIMI-Job-URI names it."""
    with _work(write=False) as work:
        entity = work.at(location)
        if entity is None:
            raise errors.NotFound(f"{location} is gone")
        work.detailed([entity])
        type_name, body = show(work, entity) if show is not None \
            else (BY_KIND[entity.kind].name, rendered(work, entity))
    headers = {}
    if job_id is not None:
        headers["CIMI-Job-URI"] = _absolute(f"{JOB.segment}/{job_id}")
    if created:
        headers["Location"] = _absolute(body["id"])
    waiting = entity.attributes.get(state_attribute(entity)) == "waiting"
    return Answer(202 if waiting else 201 if created else 200, type_name, body,
                  headers=headers)


def _job_answer(job_id: str | None) -> Answer:
    """A delete's or an action's answer: its Job, 202 while it goes on."""
    if job_id is None:
        return Answer(200)
    with _work(write=False) as work:
        record = work.repo.job(job_id)
    assert record is not None
    body = resources.job(record, _type_at)
    return Answer(202 if record["state"] == "running" else 200, JOB.name, body,
                  headers={"CIMI-Job-URI": _absolute(body["id"])})


@blueprint.route("/<segment>/<member>", methods=METHODS)
def member(segment: str, member: str) -> Response:
    cimi_type = BY_SEGMENT.get(segment)
    if cimi_type is None:
        raise errors.NotFound(f"no CIMI resource {segment}/{member}")
    if cimi_type.kept:
        return _respond(_kept_member(cimi_type, member))
    if cimi_type.kind is None:
        if request.method not in ("GET", "HEAD"):
            raise errors.MethodNotAllowed(f"{cimi_type.name} resources are read-only here",
                                          ["GET", "HEAD"])
        return _respond(Answer(200, cimi_type.name, _read_only(cimi_type, member)))
    method = request.method
    if method in ("GET", "HEAD"):
        with _work(write=False) as work:
            entity = work.detailed([work.observed(_member(work, cimi_type, member))])[0]
            body = rendered(work, entity)
            if cimi_type is MACHINE:
                body = expanded(read(request.args.to_dict(flat=False)), body,
                                _machine_expansions(work, entity))
        return _respond(Answer(200, cimi_type.name, body))
    if method == "PUT":
        body = _body()
        assert body is not None
        with _work(write=True) as work:
            entity = _member(work, cimi_type, member)
            work.update(entity, creates.edit(body, entity.kind), full=False)
            job_id = work.job.id if work.job is not None else None
        return _respond(_outcome(entity.location, job_id))
    if method == "DELETE":
        with _work(write=True) as work:
            entity = _member(work, cimi_type, member)
            work.delete(entity)
            job_id = work.job.id if work.job is not None else None
        return _respond(_job_answer(job_id))
    return _respond(_action(cimi_type, member, None))


@blueprint.route("/<segment>/<member>/action/<operation>", methods=["POST"])
def operation(segment: str, member: str, operation: str) -> Response:
    cimi_type = BY_SEGMENT.get(segment)
    if cimi_type is None or cimi_type.kind is None:
        raise errors.NotFound(f"no CIMI resource {segment}/{member} with operations")
    return _respond(_action(cimi_type, member, operation))


def _action(cimi_type: CimiType, member: str, named: str | None) -> Answer:
    body = _body(required=named is None)
    with _work(write=True) as work:
        entity = _member(work, cimi_type, member)
        spec, term = creates.action(body, entity.kind, named)
        work.trigger(entity, spec, term)
        job_id = work.job.id if work.job is not None else None
    return _job_answer(job_id)


def _read_only(cimi_type: CimiType, member: str) -> Resource:
    with _work(write=False) as work:
        if cimi_type is JOB:
            record = work.repo.job(member)
            if record is None:
                raise errors.NotFound(f"no Job job/{member}")
            return resources.job(record, _type_at)
        found = _members(work, cimi_type, Query())
    wanted = f"{cimi_type.segment}/{member}"
    resource = next((r for r in found if r["id"] == wanted), None)
    if resource is None:
        raise errors.NotFound(f"no {cimi_type.name} {wanted}")
    return resource


@blueprint.route("/machine/<member>/<part_collection>", methods=METHODS)
def machine_parts(member: str, part_collection: str) -> Response:
    part = MACHINE_PARTS.get(part_collection)
    if part is None:
        raise errors.NotFound(f"a Machine has no collection {part_collection}")
    if request.method in ("GET", "HEAD", "PUT"):
        query = _query()
        with _work(write=False) as work:
            machine = _member(work, MACHINE, member)
            body = _part_collection(work, machine, part, query)
        return _respond(Answer(200, part.name + "Collection", body,
                               members=(part.members, part.name)))
    if request.method != "POST":
        raise errors.MethodNotAllowed(f"{request.method} is not defined on "
                                      f"machine/{member}/{part_collection}",
                                      ["GET", "HEAD", "PUT", "POST"])
    body = _body()
    assert body is not None and part.kind is not None
    operation = creates.collection_action(body, insertable=part is MACHINE_VOLUME)
    if operation == "remove":
        return _respond(_remove_volume(member, body))
    with _work(write=True) as work:
        machine = _member(work, MACHINE, member)
        refs = _refs(work)
        link = creates.volume_link(body, refs) if part is MACHINE_VOLUME \
            else creates.interface_link(body, refs)
        created = work.create(part.kind, [creates.as_entity(link, machine.location)])[0]
        job_id = work.job.id if work.job is not None else None
    return _respond(_outcome(created.location, job_id, created=True,
                             show=_part_shown(machine)))


def _remove_volume(member: str, body: Resource) -> Answer:
    """The "remove" operation of a machine's volumes: the volume is detached
    (DSP0263 5.5.12.3), and stays."""
    with _work(write=True) as work:
        machine = _member(work, MACHINE, member)
        volume = creates.volume_link(body, _refs(work)).target
        link = next((link for link in work.repo.links_from([machine.id])[machine.id]
                     if link.kind == STORAGELINK.type_id and link.target == volume), None)
        if link is None:
            raise errors.NotFound(f"{resources.href_of(VOLUME, volume or '')} is not attached "
                                  f"to machine/{member}")
        work.delete(link)
        job_id = work.job.id if work.job is not None else None
    return _job_answer(job_id)


def _part_shown(machine: Entity) -> Callable[[Work, Entity], tuple[str, Resource]]:
    def show(work: Work, link: Entity) -> tuple[str, Resource]:
        part = MACHINE_VOLUME if link.kind == STORAGELINK.type_id else MACHINE_INTERFACE
        return part.name, resources.machine_part(machine, link,
                                                 bool(work.changeable([machine])),
                                                 _busy_operation(work, link))
    return show


@blueprint.route("/machine/<member>/volume/<link>", methods=METHODS)
@blueprint.route("/machine/<member>/networkInterface/<link>", methods=METHODS)
def machine_part(member: str, link: str) -> Response:
    part = MACHINE_VOLUME if request.path.rstrip("/").split("/")[-2] == "volume" \
        else MACHINE_INTERFACE
    assert part.kind is not None
    if request.method in ("GET", "HEAD"):
        with _work(write=False) as work:
            machine = _member(work, MACHINE, member)
            found = next((r for r in _parts(work, machine, part)
                          if r["id"].rpartition("/")[2] == link), None)
        if found is None:
            raise errors.NotFound(f"no {part.name} machine/{member}/{part.segment}/{link}")
        return _respond(Answer(200, part.name, found))
    if request.method != "DELETE":
        raise errors.MethodNotAllowed(f"{request.method} is not defined on a {part.name}",
                                      ["GET", "HEAD", "DELETE"])
    with _work(write=True) as work:
        machine = _member(work, MACHINE, member)
        entity = work.at(f"{part.kind.location}{link}") if "/" not in link else None
        if entity is None or entity.source != machine.location:
            raise errors.NotFound(f"no {part.name} machine/{member}/{part.segment}/{link}")
        work.delete(entity)
        job_id = work.job.id if work.job is not None else None
    return _respond(_job_answer(job_id))


@blueprint.route("/<path:rest>", methods=METHODS)
def unknown(rest: str) -> Response:
    raise errors.NotFound(f"nothing at {_prefix()}/{rest}; the entry point {_prefix()}/ "
                          "lists what is")
