"""One generic view: resolve the path to a shape (query interface, kind or mixin
collection, entity, new entity path, unbound path) and apply the method."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from weakref import WeakKeyDictionary, ref

from flask import Response, current_app, g, request

from occi_server.core import Entity, Kind, Mixin, Model
from occi_server.core.specs import ActionSpec, CategorySpec, EntitySpec, Filter
from occi_server.errors import (
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
)
from occi_server.http.answers import Answer, Answers, answer_key
from occi_server.http.numbers import whole_number
from occi_server.http.prefer import preferred_wait
from occi_server.http.routes import Shape, Target, resolve
from occi_server.http.urls import base_url
from occi_server.rendering import (
    RenderContext,
    Rendered,
    RequestData,
    choose_parser,
    choose_renderer,
)
from occi_server.rendering.base import Parser, Renderer, split_type_id
from occi_server.rendering.negotiation import Negotiated
from occi_server.rendering.text import read_pairs
from occi_server.service import Service, Work
from occi_server.service.query import add_user_mixins, delete_user_mixins, discover
from occi_server.store import Position

# A whole collection is read and sent this many members at a time; a location
# list (a line each, not a rendering) this many locations.
CHUNK = 1000
LOCATIONS_CHUNK = 10_000
# The query interface's rendered answers, per model: by media type and base URL.
_QUERY_BODIES: WeakKeyDictionary[Model, dict[tuple[str, str], Rendered]] = WeakKeyDictionary()
QUERY_BODIES_KEPT = 16


@dataclass
class Result:
    status: int
    # Rendered, or how to render it once the request's job is done (an entity
    # an action changed shows the outcome, not `waiting`).
    rendered: Rendered | Callable[[], Rendered]
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A body sent piece by piece as it is made (a whole collection).
    pieces: Iterator[bytes] | None = None


class Exchange:
    """One request being answered."""

    def __init__(self, service: Service, work: Work, ctx: RenderContext, target: Target,
                 data: RequestData) -> None:
        self.service = service
        self.work = work
        self.data = data  # read before the transaction opened
        self.ctx = ctx
        self.target = target
        self.method = "GET" if request.method == "HEAD" else request.method
        self.action = request.args.get("action")
        self.negotiated: Negotiated = choose_renderer(request.headers.get("Accept"),
                                                      listing=self._is_listing())

    def members(self, query: Filter) -> list[Entity]:
        """The members of the collection the path names that `query` selects."""
        return self.work.members(self.target.collection, self.target.path, query)

    def _is_listing(self) -> bool:
        shape = self.target.shape
        if shape in (Shape.KIND, Shape.MIXIN, Shape.UNBOUND):
            return True
        if shape is Shape.QUOTA:
            return self.target.entity is None
        return shape is Shape.NEW

    @property
    def renderer(self) -> Renderer:
        return self.negotiated.renderer

    def body(self) -> RequestData:
        return self.data

    def parser(self) -> Parser:
        return choose_parser(request.headers.get("Content-Type"))

    # ------------------------------------------------------------ helpers
    def entity_result(self, entity: Entity, status: int = 200) -> Result:
        self.work.detailed([entity])
        return Result(status, lambda: self.renderer.entity(entity, self.ctx))

    def collection_result(self, entities: Sequence[Entity]) -> Result:
        if not self.renderer.lists_locations:
            self.work.detailed(entities)  # JSON carries full renderings
        return Result(200, self.renderer.collection(entities, self.ctx,
                                                    links=self.holds_links()))

    def holds_links(self) -> bool | None:
        """Whether the collection is of links (None: it may hold both)."""
        category = self.target.category
        return self.work.model.is_link_kind(category.type_id) \
            if self.target.shape is Shape.KIND and isinstance(category, Kind) else None

    def streamed(self, kind: Kind) -> Result | None:
        """A whole kind collection sent in chunks as they are read (each chunk
        in a read transaction of its own, so a slow reader holds none open);
        None where the rendering cannot be sent so."""
        service, scope, local_path = self.service, g.scope, self.ctx.local_path

        def chunks(read: Callable[[Work, Position | None], tuple[Any, Position | None]]
                   ) -> Iterator[Any]:
            after: Position | None = None
            while True:
                with service.work(write=False, local_path=local_path, scope=scope) as work:
                    found, after = read(work, after)
                yield found
                if after is None:
                    return

        if self.renderer.lists_locations:
            lines = self.renderer.location_lines
            if lines is None:
                return None
            pieces: Iterator[bytes] | None = lines.pieces(chunks(
                lambda work, after: work.location_chunk(kind, after, LOCATIONS_CHUNK)), self.ctx)
        else:
            holds_links = self.holds_links()
            assert holds_links is not None
            pieces = self.renderer.collection_pieces(chunks(
                lambda work, after: work.chunk(kind, after, CHUNK)), self.ctx, holds_links)
        return None if pieces is None else Result(200, Rendered(), pieces=pieces)

    def created_result(self, created: Sequence[Entity]) -> Result:
        self.work.with_actions(created)
        headers = [("Location", self.ctx.absolute(created[0].location))] if len(created) == 1 \
            else []
        return Result(201, self.renderer.locations(created, self.ctx), headers)

    def entities_in_body(self) -> list[Entity]:
        references = self.parser().locations(self.body(), self.ctx)
        return [self.work.entity_at(reference, "entity") for reference in references]

    def listed_entities(self) -> list[Entity] | None:
        """The entities a DELETE names (body, or text/occi location headers);
        None when it names none, which means every member."""
        if request.content_length or "X-OCCI-Location" in request.headers \
                or "Location" in request.headers:
            return self.entities_in_body()
        return None

    def one_entity_spec(self) -> EntitySpec:
        specs = self.parser().entities(self.body(), self.ctx)
        if len(specs) != 1:
            raise BadRequest(f"expected one entity rendering, got {len(specs)}")
        return specs[0]

    def action_spec(self) -> ActionSpec:
        if not self.action:
            raise BadRequest("the query string names no action: use ?action=TERM")
        return self.parser().action(self.body(), self.ctx)

    def page(self) -> tuple[int | None, int | None]:
        values: list[int | None] = []
        for name in ("page", "number"):
            raw = request.args.get(name)
            if raw is None:
                values.append(None)
                continue
            values.append(whole_number(name, raw, least=1))
        page, number = values
        limit = self.work.settings.max_page_size
        if number is not None and number > limit:
            raise PayloadTooLarge(f"number={number} is above this server's page size limit "
                                  f"of {limit}")
        return page, number

    def filter(self) -> Filter:
        """Filters travel as text/occi headers, whatever the rendering."""
        message = read_pairs(list(request.headers.items()), strict=False)
        return Filter(categories=[*message.categories, *self.query_categories()],
                      attributes=message.attributes)

    @staticmethod
    def query_categories() -> list[CategorySpec]:
        """`?category=` values: a type identifier, or a bare term."""
        categories = []
        for value in request.args.getlist("category"):
            scheme, term = split_type_id(value)
            categories.append(CategorySpec(term=term or value, scheme=scheme if term else ""))
        return categories

    # ------------------------------------------------------------ shapes
    def answer(self) -> Result:
        shape, method = self.target.shape, self.method
        if method == "OPTIONS":
            return Result(200, self.renderer.empty(),
                          [("Allow", ", ".join([*ALLOWED[shape], "OPTIONS"]))])
        handler = HANDLERS[shape].get(method)
        if handler is None:
            if shape is Shape.NEW:
                raise NotFound(f"nothing at {self.target.path}")
            raise MethodNotAllowed(f"{request.method} is not defined on {self.target.path}",
                                   ALLOWED[shape])
        return handler(self)

    def query_get(self) -> Result:
        wanted = self.filter().categories
        if wanted:
            return Result(200, self.renderer.categories(discover(self.work, wanted), self.ctx))
        # The whole interface, the largest body most clients fetch first, is
        # rendered once per model (a change to the model makes another model).
        bodies = _QUERY_BODIES.setdefault(self.work.model, {})
        key = (self.negotiated.media_type, self.ctx.base_url)
        rendered = bodies.get(key)
        if rendered is None:
            rendered = self.renderer.categories(discover(self.work, []), self.ctx)
            if len(bodies) < QUERY_BODIES_KEPT:  # base URLs come from Host headers
                bodies[key] = rendered
        return Result(200, rendered)

    def query_post(self) -> Result:
        created = add_user_mixins(self.work, self.parser().categories(self.body(), self.ctx))
        return Result(200, self.renderer.categories(created, self.ctx))

    def query_delete(self) -> Result:
        specs = self.query_categories()
        if not specs:
            specs = self.parser().categories(self.body(), self.ctx)
        delete_user_mixins(self.work, specs)
        return Result(200, self.renderer.empty())

    def kind_get(self) -> Result:
        page, number = self.page()
        query = self.filter()
        if self.work.whole_collection(page, number) and not query \
                and self.target.shape is Shape.KIND:
            assert isinstance(self.target.category, Kind)
            streamed = self.streamed(self.target.category)
            if streamed is not None:
                return streamed
        members, following = self.work.listing(self.target.collection, self.target.path,
                                                query, page, number,
                                                light=self.renderer.lists_locations)
        result = self.collection_result(members)
        if following is not None:  # the rest of the collection is a request away
            arguments = {**request.args.to_dict(flat=True), "page": str(following),
                         "number": str(number or self.work.settings.default_page_size)}
            result.headers.append(("X-OCCI-Next-Page", self.ctx.absolute(
                f"{request.path}?{urlencode(arguments)}")))
        return result

    def kind_post(self) -> Result:
        if self.action is not None:
            return self._collection_action()
        assert isinstance(self.target.category, Kind)
        created = self.work.create(self.target.category,
                                   self.parser().entities(self.body(), self.ctx))
        return self.created_result(created)

    def _collection_action(self) -> Result:
        members = self.work.changeable(self.members(Filter()))
        done = self.work.trigger_all(members, self.action_spec(), str(self.action))
        return self.collection_result(done)

    def kind_delete(self) -> Result:
        listed = self.listed_entities()
        members = self.work.changeable(self.members(self.filter()))
        if listed is not None:
            member_ids = {m.id for m in members}
            outside = [e.location for e in listed if e.id not in member_ids]
            if outside:
                raise BadRequest(f"not in {self.target.path}: {', '.join(outside)}")
            members = listed
        self.work.delete_all(members)
        return Result(200, self.renderer.empty())

    def mixin_post(self) -> Result:
        if self.action is not None:
            return self._collection_action()
        assert isinstance(self.target.category, Mixin)
        self.work.associate(self.target.category, self.entities_in_body())
        return self.collection_result(self.members(Filter()))

    def mixin_put(self) -> Result:
        mixin = self.target.category
        assert isinstance(mixin, Mixin)
        wanted = self.entities_in_body()
        wanted_ids = {e.id for e in wanted}
        current = self.work.changeable(self.members(Filter()))
        self.work.dissociate(mixin, [e for e in current if e.id not in wanted_ids])
        self.work.associate(mixin, wanted)
        return self.collection_result(self.members(Filter()))

    def mixin_delete(self) -> Result:
        mixin = self.target.category
        assert isinstance(mixin, Mixin)
        listed = self.listed_entities()
        current = self.work.changeable(self.members(Filter()))
        if listed is not None:
            listed_ids = {e.id for e in listed}
            current = [e for e in current if e.id in listed_ids]
        self.work.dissociate(mixin, current)
        return self.collection_result(self.members(Filter()))

    def keepable(self, result: Result) -> bool:
        """Whether `result` is a function of the store's content alone (it may
        be sent again while nothing changes): the query interface, collections,
        an entity shown as stored."""
        if result.status != 200 or self.method != "GET":
            return False
        shape, entity = self.target.shape, self.target.entity
        if shape is Shape.ENTITY:
            return entity is not None and not self.work.is_live(entity)
        return shape in (Shape.QUERY, Shape.KIND, Shape.MIXIN, Shape.UNBOUND)

    def entity_get(self) -> Result:
        assert self.target.entity is not None
        return self.entity_result(self.work.observed(self.target.entity))

    def quota_get(self) -> Result:
        """Quotas (an extension: the read-only quota kind)."""
        if self.target.entity is not None:
            return Result(200, self.renderer.entity(self.target.entity, self.ctx))
        return Result(200, self.renderer.collection(self.work.quotas(), self.ctx, links=False))

    def console_get(self) -> Result:
        """The serial console log of a compute (an extension: text/plain only)."""
        assert self.target.entity is not None
        if self.negotiated.media_type not in ("text/plain", "text/occi+plain"):
            raise NotAcceptable("the console log is available as text/plain only")
        return Result(200, Rendered(body=self.work.console(self.target.entity)))

    def entity_post(self) -> Result:
        entity = self.target.entity
        assert entity is not None
        if self.action is not None:
            result = self.work.trigger(entity, self.action_spec(), str(self.action))
            if isinstance(result, Mixin):
                return Result(200, self.renderer.categories([result], self.ctx))
            return self.entity_result(result)
        return self.entity_result(self.work.update(entity, self.one_entity_spec(), full=False))

    def entity_put(self) -> Result:
        entity = self.target.entity
        assert entity is not None
        return self.entity_result(self.work.update(entity, self.one_entity_spec(), full=True))

    def entity_delete(self) -> Result:
        assert self.target.entity is not None
        self.work.delete(self.target.entity)
        return Result(200, self.renderer.empty())

    def new_put(self) -> Result:
        kind = self.target.category
        assert isinstance(kind, Kind)
        entity_id = self.target.path.rpartition("/")[2]
        created = self.work.create(kind, [self.one_entity_spec()], entity_id=entity_id)
        return self.created_result(created)


# What each shape of path answers, method by method (HEAD is answered as GET).
HANDLERS: dict[Shape, dict[str, Callable[[Exchange], Result]]] = {
    Shape.QUERY: {"GET": Exchange.query_get, "POST": Exchange.query_post,
                  "DELETE": Exchange.query_delete},
    Shape.KIND: {"GET": Exchange.kind_get, "POST": Exchange.kind_post,
                 "DELETE": Exchange.kind_delete},
    Shape.MIXIN: {"GET": Exchange.kind_get, "POST": Exchange.mixin_post,
                  "PUT": Exchange.mixin_put, "DELETE": Exchange.mixin_delete},
    Shape.ENTITY: {"GET": Exchange.entity_get, "POST": Exchange.entity_post,
                   "PUT": Exchange.entity_put, "DELETE": Exchange.entity_delete},
    Shape.NEW: {"PUT": Exchange.new_put},
    Shape.UNBOUND: {"GET": Exchange.kind_get},
    Shape.CONSOLE: {"GET": Exchange.console_get},
    Shape.QUOTA: {"GET": Exchange.quota_get},
}
ALLOWED = {shape: [allowed for method in methods
                   for allowed in ((method, "HEAD") if method == "GET" else (method,))]
           for shape, methods in HANDLERS.items()}


def dispatch(path: str = "") -> Response:
    service: Service = current_app.extensions["occi.service"]
    answers: Answers = current_app.extensions["occi.answers"]
    base = base_url()
    key = answer_key(request.environ, base, g.scope) if answers.take(request.environ) \
        else None
    write = request.method in ("POST", "PUT", "DELETE")
    ctx = RenderContext(model=service.builtin, base_url=base)
    data = RequestData(body=request.get_data(cache=True), headers=list(request.headers.items()))
    if request.method in ("POST", "PUT"):  # the syntax is checked before any lock is taken
        choose_parser(request.headers.get("Content-Type")).read(data)
    preferred = preferred_wait(request.headers.get("Prefer"),
                               service.settings.job_wait_max_seconds)
    with service.work(write=write, local_path=ctx.local_path, scope=g.scope,
                      wait=preferred[0] if preferred else None) as work:
        ctx.model = work.model
        exchange = Exchange(service, work, ctx, resolve(work, request.path), data)
        result = exchange.answer()
    rendered = result.rendered() if callable(result.rendered) else result.rendered
    headers = [*rendered.headers, *result.headers]
    media_type = exchange.negotiated.media_type
    body: str | bytes | Iterator[bytes] = rendered.body if result.pieces is None \
        else result.pieces
    if key is not None and exchange.keepable(result):
        answer = Answer(rendered.body.encode(), media_type, tuple(headers), work.generations,
                        ref(work.model))
        if result.pieces is None:
            body = answer.body
            answers.keep(key, answer)
        else:
            body = answers.kept_as_sent(key, result.pieces, answer, service.store.generations)
    response = Response(body, status=result.status, content_type=media_type)
    for name, value in headers:
        response.headers.add(name, value)
    if preferred is not None and work.job is not None:
        response.headers["Preference-Applied"] = preferred[1]
    return response
