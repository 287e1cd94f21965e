"""application/occi+json (GFD.226), validated against the schemas in schemas/.

Accepts the pre-1.2 variant old clients still send under the same media type:
attributes nested by namespace, plain-string link source/target, and a bare
resource where a collection is expected."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from occi_server.core import Action, Attribute, Category, Entity, Kind, Mixin
from occi_server.core.specs import ActionSpec, CategorySpec, EntitySpec, LinkSpec
from occi_server.errors import BadRequest, OCCIError
from occi_server.rendering.base import Parser, RenderContext, Rendered, Renderer, RequestData
from occi_server.rendering.ordering import ordered_attributes

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_BASE = "https://occi-server.example/schemas/"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        document = json.loads(path.read_text())
        resources.append((document["$id"], Resource.from_contents(document)))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for schemas/<name> (or a fragment like common.json#/$defs/x)."""
    return Draft202012Validator({"$ref": SCHEMA_BASE + name}, registry=_registry())


def validate(document: Any, name: str, what: str) -> None:
    error = best_match(validator(name).iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the document"
        raise BadRequest(f"invalid {what} in application/occi+json: at {where}: {error.message}")


# ---------------------------------------------------------------- rendering
def attribute_json(attribute: Attribute) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "mutable": attribute.mutable,
        "required": attribute.required,
        "type": attribute.type.json_type,
        "pattern": attribute.json_pattern(),
    }
    if attribute.default is not None:
        doc["default"] = attribute.default
    if attribute.description:
        doc["description"] = attribute.description
    return doc


def category_json(category: Category, ctx: RenderContext) -> dict[str, Any]:
    doc: dict[str, Any] = {"term": category.term, "scheme": category.scheme}
    if category.title:
        doc["title"] = category.title
    if isinstance(category, Kind):
        attributes = ctx.model.kind_attributes(category)
    elif isinstance(category, Mixin):
        attributes = ctx.model.mixin_attributes(category)
    else:
        attributes = list(category.attributes)
    if attributes:
        doc["attributes"] = {a.name: attribute_json(a) for a in attributes}
    if isinstance(category, Kind | Mixin) and category.actions:
        doc["actions"] = [a.type_id for a in category.actions]
    if isinstance(category, Kind) and category.parent:
        doc["parent"] = category.parent
    if isinstance(category, Mixin):
        if category.depends:
            doc["depends"] = list(category.depends)
        if category.applies:
            doc["applies"] = list(category.applies)
    if isinstance(category, Kind | Mixin) and category.location:
        doc["location"] = category.location
    return doc


def entity_json(entity: Entity, ctx: RenderContext) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": entity.kind}
    if entity.mixins:
        doc["mixins"] = list(entity.mixins)
    doc["id"] = entity.id
    attributes = ordered_attributes(entity, ctx.model)
    if "occi.core.title" in attributes:
        doc["title"] = attributes["occi.core.title"]
    if not entity.is_link and "occi.core.summary" in attributes:
        doc["summary"] = attributes["occi.core.summary"]
    doc["attributes"] = attributes
    if entity.actions:
        doc["actions"] = list(entity.actions)
    if entity.is_link:
        doc["source"] = {"location": entity.source}
        doc["target"] = {"location": entity.target}
        if entity.target_kind:
            doc["target"]["kind"] = entity.target_kind
    elif entity.links:
        doc["links"] = [entity_json(link, ctx) for link in entity.links]
    return doc


def _dump(document: Any) -> str:
    # Compact: an indent makes the json module fall back to its slow pure-Python encoder.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


class JsonRenderer(Renderer):
    media_type = "application/occi+json"

    def entity(self, entity: Entity, ctx: RenderContext) -> Rendered:
        return Rendered(body=_dump(entity_json(entity, ctx)))

    def collection(self, entities: Sequence[Entity], ctx: RenderContext,
                   links: bool | None = None) -> Rendered:
        """Only the key of the members' type (GFD.226's entity collections); both
        where a collection holds resources and links at once."""
        found = {"resources": [entity_json(e, ctx) for e in entities if not e.is_link],
                 "links": [entity_json(e, ctx) for e in entities if e.is_link]}
        wanted = {"resources": links is False or (links is None and not found["links"]) or
                  bool(found["resources"]),
                  "links": links is True or bool(found["links"])}
        return Rendered(body=_dump({key: found[key] for key in found if wanted[key]}))

    def collection_pieces(self, chunks: Iterable[Sequence[Entity]], ctx: RenderContext,
                          links: bool) -> Iterator[bytes]:
        yield b'{"links":[' if links else b'{"resources":['
        separator = ""
        for chunk in chunks:
            if chunk:
                yield (separator + _dump([entity_json(e, ctx) for e in chunk])[1:-2]).encode()
                separator = ","
        yield b"]}\n"

    def locations(self, entities: Sequence[Entity], ctx: RenderContext) -> Rendered:
        if len(entities) == 1:
            return self.entity(entities[0], ctx)
        return self.collection(entities, ctx)

    def categories(self, categories: Sequence[Category], ctx: RenderContext) -> Rendered:
        return Rendered(body=_dump({
            "kinds": [category_json(c, ctx) for c in categories if isinstance(c, Kind)],
            "mixins": [category_json(c, ctx) for c in categories if isinstance(c, Mixin)],
            "actions": [category_json(c, ctx) for c in categories if isinstance(c, Action)],
        }))

    def empty(self) -> Rendered:
        return Rendered()

    def error(self, error: OCCIError) -> Rendered:
        return Rendered(body=_dump({"code": error.status, "message": error.message}))


# ---------------------------------------------------------------- parsing
def _flatten(attributes: dict[str, Any]) -> dict[str, Any]:
    """Pre-1.2 JSON nests attributes by namespace: {"occi": {"core": {"id": …}}}.
    A top-level key without a dot whose value is an object is such a namespace."""
    flat: dict[str, Any] = {}
    for key, value in attributes.items():
        if "." not in key and isinstance(value, dict):
            flat.update(_flatten_namespace(key, value))
        else:
            flat[key] = value
    return flat


def _flatten_namespace(prefix: str, namespace: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in namespace.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            flat.update(_flatten_namespace(name, value))
        else:
            flat[name] = value
    return flat


def _normalise_entity(document: Any) -> Any:
    if not isinstance(document, dict):
        return document
    document = dict(document)
    if isinstance(document.get("attributes"), dict):
        document["attributes"] = _flatten(document["attributes"])
    for end in ("source", "target"):
        if isinstance(document.get(end), str):
            document[end] = {"location": document[end]}
    if isinstance(document.get("links"), list):
        document["links"] = [_normalise_entity(link) for link in document["links"]]
    return document


def _merge_core(document: dict[str, Any]) -> dict[str, Any]:
    """Top-level id/title/summary win over the same values inside attributes."""
    attributes = dict(document.get("attributes") or {})
    for key, name in (("id", "occi.core.id"), ("title", "occi.core.title"),
                      ("summary", "occi.core.summary")):
        if document.get(key) is not None:
            attributes[name] = document[key]
    return attributes


def _link_spec(document: dict[str, Any]) -> LinkSpec:
    target = document.get("target") or {}
    source = document.get("source") or {}
    return LinkSpec(
        target=target.get("location"),
        kind=document.get("kind"),
        mixins=list(document.get("mixins") or []),
        attributes=_merge_core(document),
        target_kind=target.get("kind"),
        source=source.get("location"),
    )


def _entity_spec(document: dict[str, Any]) -> EntitySpec:
    target = document.get("target") or {}
    source = document.get("source") or {}
    return EntitySpec(
        kind=document.get("kind"),
        mixins=list(document.get("mixins") or []),
        attributes=_merge_core(document),
        links=[_link_spec(link) for link in document.get("links") or []],
        source=source.get("location"),
        target=target.get("location"),
        target_kind=target.get("kind"),
        actions=list(document.get("actions") or []),
    )


class JsonParser(Parser):
    media_type = "application/occi+json"

    def read(self, request: RequestData) -> None:
        self._load(request)

    @staticmethod
    def _load(request: RequestData) -> Any:
        return request.once("json", lambda: _json_document(request))

    def entities(self, request: RequestData, ctx: RenderContext) -> list[EntitySpec]:
        document = self._load(request)
        if document is None:
            return []
        if isinstance(document, dict) and "kind" not in document and (
                "resources" in document or "links" in document):
            document = {key: [_normalise_entity(e) for e in value] if isinstance(value, list)
                        else value for key, value in document.items()}
            validate(document, "collection.json", "entity collection")
            items = [*document.get("resources", []), *document.get("links", [])]
        elif isinstance(document, list):
            items = [_normalise_entity(item) for item in document]
            for item in items:
                self._validate_entity(item, ctx)
        else:
            items = [_normalise_entity(document)]
            self._validate_entity(items[0], ctx)
        return [_entity_spec(item) for item in items]

    @staticmethod
    def _validate_entity(document: Any, ctx: RenderContext) -> None:
        if not isinstance(document, dict):
            raise BadRequest("expected a JSON object rendering a resource or link")
        kind = document.get("kind")
        is_link = ("source" in document or "target" in document
                   or (isinstance(kind, str) and ctx.model.is_link_kind(kind)))
        validate(document, "link.json" if is_link else "resource.json",
                 "link" if is_link else "resource")

    def action(self, request: RequestData, ctx: RenderContext) -> ActionSpec:
        document = self._load(request)
        if document is None:
            return ActionSpec(None)
        if isinstance(document, dict) and isinstance(document.get("attributes"), dict):
            document = {**document, "attributes": _flatten(document["attributes"])}
        validate(document, "action-invocation.json", "action invocation")
        return ActionSpec(document["action"], dict(document.get("attributes") or {}))

    def categories(self, request: RequestData, ctx: RenderContext) -> list[CategorySpec]:
        document = self._load(request)
        if document is None:
            return []
        if isinstance(document, dict) and "mixins" not in document and "term" in document:
            document = {"mixins": [document]}
        if not isinstance(document, dict) or set(document) - {"kinds", "mixins", "actions"}:
            raise BadRequest('expected {"mixins": [{"term": …, "scheme": …, "location": …}]}')
        if document.get("kinds") or document.get("actions"):
            raise BadRequest("only mixins can be created or deleted through the query interface")
        mixins = document.get("mixins")
        if not isinstance(mixins, list):
            raise BadRequest('"mixins" must be an array of mixin objects')
        for mixin in mixins:
            validate(mixin, "common.json#/$defs/mixin_fields", "mixin")
        return [CategorySpec(
            term=m["term"], scheme=m["scheme"], category_class="mixin", title=m.get("title"),
            rel=list(m.get("depends") or []), location=m.get("location"),
            attributes=list(m.get("attributes") or {}), actions=list(m.get("actions") or []),
            applies=list(m.get("applies") or []),
        ) for m in mixins]

    def locations(self, request: RequestData, ctx: RenderContext) -> list[str]:
        document = self._load(request)
        if document is None:
            return []
        if isinstance(document, list) and all(isinstance(item, str) for item in document):
            validate(document, "location-list.json", "location list")
            return document
        locations = []
        for spec in self.entities(request, ctx):
            kind = ctx.model.kind(spec.kind or "")
            entity_id = spec.attributes.get("occi.core.id")
            if kind is None or not kind.location or not entity_id:
                raise BadRequest("each entity in a location list needs a known kind and an id")
            locations.append(kind.location + str(entity_id))
        return locations


def _json_document(request: RequestData) -> Any:
    text = request.text()
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:  # including integers of more digits than Python reads
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the request body's JSON is nested too deeply") from None
