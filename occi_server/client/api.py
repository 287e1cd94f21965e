"""A client for any OCCI 1.2 endpoint, in text/plain, text/occi or
application/occi+json, with basic, bearer-token or X.509 authentication.

    client = OcciClient("https://occi.example.org:8787", auth=BasicAuth("alice", "…"))
    model = client.discover()
    vm = client.create(model.kind("compute"), mixins=[model.mixin("os_tpl#debian-12")],
                       attributes={"occi.core.title": "web"})
    client.trigger(vm, "stop", {"method": "graceful"})

It learns the site's kinds, mixins and actions from /-/ and depends on no
naming of its own: locations, schemes and terms all come from the site."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from occi_server.core.specs import CategorySpec, LinkSpec
from occi_server.errors import OCCIError
from occi_server.rendering.text import TextMessage, body_pairs, read_pairs
from occi_server.rendering.textcodec import render_attribute

CORE_LINK = "http://schemas.ogf.org/occi/core#link"
MEDIA_TYPES = ("text/plain", "text/occi", "application/occi+json")
USER_AGENT = "occi-client/0.1 OCCI/1.2"


class ClientError(Exception):
    """A request that did not succeed. `status` is the HTTP status, or None when
    the site could not be reached or its answer could not be read."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# ------------------------------------------------------------------ authentication
@dataclass(frozen=True)
class BasicAuth:
    user: str
    password: str


@dataclass(frozen=True)
class TokenAuth:
    token: str


@dataclass(frozen=True)
class CertificateAuth:
    certificate: str  # PEM file with the certificate (and the key, unless `key` is given)
    key: str | None = None


Auth = BasicAuth | TokenAuth | CertificateAuth | None


# ------------------------------------------------------------------ the model
@dataclass
class Model:
    """The categories a site advertises at /-/."""

    categories: list[CategorySpec]

    def kinds(self) -> list[CategorySpec]:
        return [c for c in self.categories if c.category_class == "kind"]

    def mixins(self) -> list[CategorySpec]:
        return [c for c in self.categories if c.category_class == "mixin"]

    def get(self, type_id: str) -> CategorySpec | None:
        return next((c for c in self.categories if c.type_id == type_id), None)

    def kind(self, name: str) -> CategorySpec:
        """A kind by type id or term (`compute`)."""
        found = [k for k in self.kinds() if name in (k.type_id, k.term)]
        if not found:
            raise ClientError(f"the site offers no kind {name!r}; `occi discover` lists them")
        return found[0]

    def mixin(self, name: str) -> CategorySpec:
        """A mixin by type id, by `parent#term` (`os_tpl#debian-12`) or by term."""
        if self.get(name) is not None and self.get(name).category_class == "mixin":
            return self.get(name)  # type: ignore[return-value]
        parent, _, term = name.rpartition("#")
        found = [m for m in self.mixins() if m.term == term and (
            not parent or any(r.rpartition("#")[2] == parent for r in m.rel))]
        if len(found) > 1:
            raise ClientError(f"{name!r} names several mixins: "
                              + ", ".join(m.type_id for m in found))
        if not found:
            raise ClientError(f"the site offers no mixin {name!r}; `occi discover --mixins` "
                              "lists them")
        return found[0]

    def templates(self, parent: str) -> list[CategorySpec]:
        """The children of os_tpl or resource_tpl (by the parent's term)."""
        return [m for m in self.mixins() if any(r.rpartition("#")[2] == parent for r in m.rel)]

    def kind_of_location(self, location: str) -> CategorySpec | None:
        path = urlsplit(location).path
        candidates = [k for k in self.kinds() if k.location and path.startswith(
            urlsplit(k.location).path)]
        return max(candidates, key=lambda k: len(k.location or ""), default=None)

    def link_kind_to(self, target: str) -> CategorySpec | None:
        """The link kind that leads to a target: networkinterface to a network or
        an IP reservation, storagelink to a storage, securitygrouplink to a
        security group; None for other targets."""
        target_kind = self.kind_of_location(target)
        term = {"network": "networkinterface", "storage": "storagelink",
                "securitygroup": "securitygrouplink",
                "ipreservation": "networkinterface"}.get(
            target_kind.term if target_kind else "")
        return self.kind(term) if term else None


# ------------------------------------------------------------------ entities
@dataclass
class Link:
    location: str | None
    target: str | None
    kind: str | None
    mixins: list[str]
    attributes: dict[str, Any]


@dataclass
class Entity:
    location: str
    kind: str | None
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def state(self) -> str | None:
        term = (self.kind or "").rpartition("#")[2]
        return self.attributes.get(f"occi.{term}.state")

    @property
    def addresses(self) -> list[str]:
        return [str(link.attributes["occi.networkinterface.address"]) for link in self.links
                if link.attributes.get("occi.networkinterface.address")]


# ------------------------------------------------------------------ the client
class OcciClient:
    def __init__(self, endpoint: str, *, media_type: str = "text/plain", auth: Auth = None,
                 verify: bool | str = True, timeout: float = 60.0,
                 tenant: str | None = None) -> None:
        if media_type not in MEDIA_TYPES:
            raise ClientError(f"media type must be one of {', '.join(MEDIA_TYPES)}")
        self.endpoint = endpoint.rstrip("/")
        self.media_type = media_type
        self.timeout = timeout
        self.session = requests.Session()
        # Given per request: a session-level `verify` loses to REQUESTS_CA_BUNDLE.
        self.verify = verify
        self.session.headers["User-Agent"] = USER_AGENT
        if tenant:  # for users of several tenants (occi-server's X-Tenant)
            self.session.headers["X-Tenant"] = tenant
        if isinstance(auth, BasicAuth):
            self.session.auth = (auth.user, auth.password)
        elif isinstance(auth, TokenAuth):
            self.session.headers["Authorization"] = f"Bearer {auth.token}"
        elif isinstance(auth, CertificateAuth):
            for what, path in (("certificate", auth.certificate), ("key", auth.key)):
                if path is not None and not os.access(path, os.R_OK):
                    why = "no such file" if not os.path.exists(path) else "no permission"
                    raise ClientError(f"the client {what} file {path} cannot be read: {why}")
            self.session.cert = (auth.certificate, auth.key) if auth.key else auth.certificate
        if isinstance(verify, str) and not os.access(verify, os.R_OK):
            raise ClientError(f"the CA file {verify} cannot be read")
        self._model: Model | None = None

    # -------------------------------------------------------------- plumbing
    def url(self, location: str) -> str:
        return urljoin(self.endpoint + "/", location)

    def _request(self, method: str, location: str, *, headers: Mapping[str, str] | None = None,
                 body: str | None = None, accept: str | None = None) -> requests.Response:
        all_headers = {"Accept": accept or self.media_type, **(headers or {})}
        try:
            response = self.session.request(method, self.url(location), headers=all_headers,
                                            data=body.encode() if body is not None else None,
                                            timeout=self.timeout, verify=self.verify)
        except (requests.RequestException, OSError) as exc:  # OSError: TLS files gone meanwhile
            raise ClientError(f"cannot reach {self.endpoint}: {exc}") from None
        if response.status_code >= 400:
            raise ClientError(f"{method} {location}: {response.status_code} {response.reason}: "
                              f"{_error_message(response)}", response.status_code)
        return response

    def _send(self, method: str, location: str, message: _Outgoing,
              accept: str | None = None) -> requests.Response:
        headers, body = message.encode(self.media_type)
        return self._request(method, location, headers=headers, body=body, accept=accept)

    # -------------------------------------------------------------- discovery
    def discover(self, refresh: bool = False) -> Model:
        if self._model is None or refresh:
            response = self._request("GET", "/-/")
            self._model = Model(_categories(response))
        return self._model

    # -------------------------------------------------------------- reading
    def list(self, collection: str, *, attributes: Mapping[str, Any] | None = None,
             categories: Iterable[CategorySpec] = ()) -> list[str]:
        """Absolute URLs of the members of a collection (a kind or mixin term,
        type id, or location), filtered by exact attribute values and categories."""
        location = self._collection_location(collection)
        headers: dict[str, str] = {}
        if attributes:
            headers["X-OCCI-Attribute"] = ", ".join(
                render_attribute(n, v, ascii_only=True) for n, v in attributes.items())
        filters = list(categories)
        if filters:
            headers["Category"] = ", ".join(
                f'{c.term}; scheme="{c.scheme}"; class="{c.category_class}"' for c in filters)
        found: list[str] = []
        page: str | None = location
        while page is not None:  # a long collection comes in pages; each names the next
            response = self._request("GET", page, headers=headers)
            found.extend(self.url(loc) for loc in self._locations(response))
            page = response.headers.get("X-OCCI-Next-Page")
        return found

    def _collection_location(self, collection: str) -> str:
        if collection.startswith(("/", "http://", "https://")):
            return collection
        model = self.discover()
        found = [c for c in model.categories if collection in (c.type_id, c.term)
                 and c.location] or ([model.mixin(collection)] if "#" in collection else [])
        if not found or not found[0].location:
            raise ClientError(f"the site has no collection {collection!r}")
        return found[0].location

    def _locations(self, response: requests.Response) -> list[str]:
        if _media(response) == "application/occi+json" and response.text.strip():
            document = _json(response)
            model = self.discover()
            found = []
            for item in [*document.get("resources", []), *document.get("links", [])]:
                kind = model.get(item.get("kind", ""))
                if kind is None or not kind.location:
                    raise ClientError(f"cannot place a {item.get('kind')} listed by the site")
                found.append(kind.location + str(item["id"]))
            return found
        if _media(response) == "text/uri-list":
            return [line.strip() for line in response.text.splitlines()
                    if line.strip() and not line.startswith("#")]
        return _message(response).locations

    def describe(self, location: str) -> Entity:
        response = self._request("GET", location)
        return self._entity(location, response)

    def _entity(self, location: str, response: requests.Response) -> Entity:
        if _media(response) == "application/occi+json":
            return _entity_from_json(self.url(location), _json(response), self.discover())
        message = _message(response)
        kinds = [c.type_id for c in message.categories if c.category_class == "kind"]
        return Entity(
            location=self.url(location), kind=kinds[0] if kinds else None,
            mixins=[c.type_id for c in message.categories if c.category_class == "mixin"],
            attributes=dict(message.attributes),
            links=[_link_from_spec(link) for link in message.links],
            actions=[a.rpartition("=")[2] for a in message.action_links],
        )

    # -------------------------------------------------------------- writing
    def create(self, kind: CategorySpec, *, mixins: Iterable[CategorySpec] = (),
               attributes: Mapping[str, Any] | None = None,
               links: Iterable[tuple[str, CategorySpec | None]] = ()) -> str:
        """Create an entity; returns its absolute URL. `links` are (target
        location, link kind or None) pairs created along with it."""
        if not kind.location:
            raise ClientError(f"the site gives {kind.term} no collection to create in")
        message = _Outgoing(categories=[kind, *mixins], attributes=dict(attributes or {}),
                            links=[(self._path(t), k) for t, k in links], model=self.discover())
        response = self._send("POST", kind.location, message)
        location = response.headers.get("Location") or next(
            iter(self._locations(response)), None)
        if not location:
            raise ClientError("the site created the entity but did not say where")
        return self.url(location)

    def update(self, location: str, *, mixins: Iterable[CategorySpec] = (),
               attributes: Mapping[str, Any] | None = None) -> Entity:
        model = self.discover()
        kind = model.kind_of_location(location)
        # The JSON rendering requires the kind, even in a partial update.
        message = _Outgoing(categories=[*([kind] if kind else []), *mixins],
                            attributes=dict(attributes or {}), model=model)
        response = self._send("POST", location, message)
        if response.status_code == 200 and response.content:
            return self._entity(location, response)
        return self.describe(location)

    def delete(self, location: str) -> None:
        self._request("DELETE", location)

    def trigger(self, location: str, action: str,
                attributes: Mapping[str, Any] | None = None) -> Entity:
        """Trigger an action (by term or type id) on an entity; returns it afterwards."""
        model = self.discover()
        kind = model.get(self.describe(location).kind or "")
        # The entity's own kind's actions first, then any the site declares.
        declared = [*(kind.actions if kind else []),
                    *(c.type_id for c in model.categories if c.category_class == "action")]
        type_id = next((a for a in declared if action in (a, a.rpartition("#")[2])), None)
        if type_id is None:
            raise ClientError(f"{location} has no action {action!r}")
        scheme, term = type_id.rpartition("#")[0] + "#", type_id.rpartition("#")[2]
        message = _Outgoing(categories=[CategorySpec(term=term, scheme=scheme,
                                                     category_class="action")],
                            attributes=dict(attributes or {}), model=model, action=True)
        self._send("POST", f"{urlsplit(self.url(location)).path}?action={term}", message)
        return self.describe(location)

    def link(self, source: str, target: str, *, kind: CategorySpec | None = None,
             mixins: Iterable[CategorySpec] = (),
             attributes: Mapping[str, Any] | None = None) -> str:
        """Create a link between two resources; its kind follows the target's
        (network → networkinterface, storage → storagelink) unless given."""
        model = self.discover()
        kind = kind or model.link_kind_to(target)
        if kind is None:
            raise ClientError(f"cannot tell which link kind leads to {target}; give one")
        values = {"occi.core.source": self._path(source), "occi.core.target": self._path(target),
                  **(attributes or {})}
        return self.create(kind, mixins=mixins, attributes=values)

    def unlink(self, link_location: str) -> None:
        self.delete(link_location)

    def _path(self, location: str) -> str:
        """Locations on this site travel as paths (relative to the endpoint)."""
        if location.startswith(self.endpoint):
            return location[len(self.endpoint):] or "/"
        return location


# ------------------------------------------------------------------ messages
@dataclass
class _Outgoing:
    """A request rendering: categories, attributes and inline links."""

    categories: list[CategorySpec]
    attributes: dict[str, Any]
    model: Model
    links: list[tuple[str, CategorySpec | None]] = field(default_factory=list)
    action: bool = False

    def _pairs(self, ascii_only: bool) -> list[tuple[str, str]]:
        pairs = [("Category", f'{c.term}; scheme="{c.scheme}"; class="{c.category_class}"')
                 for c in self.categories]
        for target, kind in self.links:
            target_kind = self.model.kind_of_location(target)
            value = f'<{target}>; rel="{target_kind.type_id if target_kind else ""}"'
            if kind is not None:
                value += f'; category="{kind.type_id}"'
            pairs.append(("Link", value))
        pairs.extend(("X-OCCI-Attribute", render_attribute(n, v, ascii_only=ascii_only))
                     for n, v in self.attributes.items())
        return pairs

    def encode(self, media_type: str) -> tuple[dict[str, str], str | None]:
        if media_type == "application/occi+json":
            return {"Content-Type": media_type}, json.dumps(self._json())
        if media_type == "text/occi":
            headers: dict[str, str] = {"Content-Type": "text/occi"}
            for name, value in self._pairs(ascii_only=True):
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            return headers, None
        return {"Content-Type": "text/plain"}, "".join(
            f"{n}: {v}\n" for n, v in self._pairs(ascii_only=False))

    def _json(self) -> dict[str, Any]:
        if self.action:
            [action] = self.categories
            return {"action": action.type_id, "attributes": self.attributes}
        kinds = [c for c in self.categories if c.category_class == "kind"]
        document: dict[str, Any] = {}
        if kinds:
            document["kind"] = kinds[0].type_id
        mixins = [c.type_id for c in self.categories if c.category_class == "mixin"]
        if mixins:
            document["mixins"] = mixins
        attributes = dict(self.attributes)
        for end in ("source", "target"):
            if f"occi.core.{end}" in attributes:
                document[end] = {"location": attributes.pop(f"occi.core.{end}")}
        document["attributes"] = attributes
        if self.links:
            document["links"] = []
            for target, kind in self.links:
                link_kind = kind or self.model.link_kind_to(target)
                document["links"].append({
                    "kind": link_kind.type_id if link_kind else CORE_LINK,
                    "target": {"location": target}})
        return document


# ------------------------------------------------------------------ parsing answers
def _media(response: requests.Response) -> str:
    media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return {"application/json": "application/occi+json",
            "text/occi+plain": "text/plain"}.get(media, media)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ClientError("the site's JSON answer cannot be read") from None


def _message(response: requests.Response) -> TextMessage:
    try:
        if _media(response) == "text/occi":
            message = read_pairs(list(response.headers.items()), strict=False)
            if response.headers.get("Location") and not message.locations:
                message.locations.append(response.headers["Location"])
            return message
        return read_pairs(body_pairs(response.text), strict=False)
    except OCCIError as exc:
        raise ClientError(f"the site's answer cannot be read: {exc.message}") from None


def _categories(response: requests.Response) -> list[CategorySpec]:
    if _media(response) == "application/occi+json":
        document = _json(response)
        found = []
        for cls, key in (("kind", "kinds"), ("mixin", "mixins"), ("action", "actions")):
            for item in document.get(key, []):
                rel = [item["parent"]] if item.get("parent") else list(item.get("depends", []))
                found.append(CategorySpec(
                    term=item["term"], scheme=item["scheme"], category_class=cls,
                    title=item.get("title"), rel=rel, location=item.get("location"),
                    attributes=list(item.get("attributes", {})),
                    actions=list(item.get("actions", [])), applies=list(item.get("applies", []))))
        return found
    return _message(response).categories


def _link_from_spec(spec: LinkSpec) -> Link:
    return Link(location=spec.self_location, target=spec.target, kind=spec.kind,
                mixins=list(spec.mixins), attributes=dict(spec.attributes))


def _entity_from_json(location: str, document: dict[str, Any], model: Model) -> Entity:
    attributes = dict(document.get("attributes") or {})
    for key, name in (("id", "occi.core.id"), ("title", "occi.core.title"),
                      ("summary", "occi.core.summary")):
        if document.get(key) is not None:
            attributes.setdefault(name, document[key])
    links = []
    for link in document.get("links") or []:
        # JSON links carry no location: it is their kind's collection plus their id.
        link_kind = model.get(link.get("kind", ""))
        links.append(Link(
            location=link_kind.location + str(link["id"]) if link_kind and link_kind.location
            and link.get("id") else None,
            target=(link.get("target") or {}).get("location"), kind=link.get("kind"),
            mixins=list(link.get("mixins") or []),
            attributes={"occi.core.id": link.get("id"), **(link.get("attributes") or {})}))
    return Entity(location=location, kind=document.get("kind"),
                  mixins=list(document.get("mixins") or []), attributes=attributes, links=links,
                  actions=[a.rpartition("#")[2] for a in document.get("actions") or []])


def _error_message(response: requests.Response) -> str:
    if _media(response) == "application/occi+json":
        try:
            return str(response.json().get("message") or response.text.strip())
        except ValueError:
            pass
    if response.headers.get("X-OCCI-Error"):
        return response.headers["X-OCCI-Error"]
    text = response.text.strip()
    return text.lstrip("# ") if text else response.reason


__all__ = ["BasicAuth", "CertificateAuth", "ClientError", "Entity", "Link", "Model",
           "OcciClient", "TokenAuth"]
