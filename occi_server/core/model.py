"""The model registry: every kind, mixin and action a server offers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from occi_server.core.category import Action, Attribute, Category, Kind, Mixin

ENTITY = "http://schemas.ogf.org/occi/core#entity"
RESOURCE = "http://schemas.ogf.org/occi/core#resource"
LINK = "http://schemas.ogf.org/occi/core#link"
FIRST_ATTRIBUTES = ("occi.core.id", "occi.core.title", "occi.core.summary")
NAME_ORDERS_KEPT = 4096


class Model:
    """An immutable set of categories with the look-ups the protocol needs."""

    def __init__(self, categories: Iterable[Category]) -> None:
        self._by_id: dict[str, Category] = {}
        self._by_location: dict[str, Kind | Mixin] = {}
        # What is asked of every entity rendered, worked out once per model
        # (a model never changes once made; `extended` makes another).
        self._ancestries: dict[str, tuple[Kind, ...]] = {}
        self._attributes: dict[tuple[str, tuple[str, ...]], dict[str, Attribute]] = {}
        self._orders: dict[tuple[str, tuple[str, ...]],
                           tuple[tuple[str, ...], frozenset[str]]] = {}
        self._name_orders: dict[tuple[str, tuple[str, ...], tuple[str, ...]],
                                tuple[str, ...]] = {}
        for category in categories:
            self._add(category)

    def _add(self, category: Category) -> None:
        self._by_id[category.type_id] = category
        if isinstance(category, Kind | Mixin):
            for action in category.actions:
                self._by_id.setdefault(action.type_id, action)
            if category.location:
                self._by_location[category.location] = category

    def extended(self, categories: Iterable[Category]) -> Model:
        """A new model: this one plus `categories` (user and provider mixins)."""
        model = Model(())
        model._by_id = dict(self._by_id)
        model._by_location = dict(self._by_location)
        for category in categories:
            model._add(category)
        return model

    # look-ups
    def get(self, type_id: str) -> Category | None:
        return self._by_id.get(type_id)

    def __contains__(self, type_id: str) -> bool:
        return type_id in self._by_id

    def categories(self) -> list[Category]:
        return list(self._by_id.values())

    def kinds(self) -> list[Kind]:
        return [c for c in self._by_id.values() if isinstance(c, Kind)]

    def mixins(self) -> list[Mixin]:
        return [c for c in self._by_id.values() if isinstance(c, Mixin)]

    def actions(self) -> list[Action]:
        return [c for c in self._by_id.values() if isinstance(c, Action)]

    def kind(self, type_id: str) -> Kind | None:
        category = self._by_id.get(type_id)
        return category if isinstance(category, Kind) else None

    def mixin(self, type_id: str) -> Mixin | None:
        category = self._by_id.get(type_id)
        return category if isinstance(category, Mixin) else None

    def by_location(self, path: str) -> Kind | Mixin | None:
        return self._by_location.get(path)

    def locations(self) -> dict[str, Kind | Mixin]:
        return dict(self._by_location)

    # structure
    def ancestry(self, kind: Kind) -> list[Kind]:
        """The kind and its parents, nearest first, ending at core#entity."""
        known = self._ancestries.get(kind.type_id)
        if known is None or known[0] is not kind:
            chain: list[Kind] = []
            current: Kind | None = kind
            while current is not None and current not in chain:
                chain.append(current)
                current = self.kind(current.parent) if current.parent else None
            known = self._ancestries[kind.type_id] = tuple(chain)
        return list(known)

    def is_kind_of(self, kind_id: str, ancestor_id: str) -> bool:
        kind = self.kind(kind_id)
        return kind is not None and any(k.type_id == ancestor_id for k in self.ancestry(kind))

    def is_link_kind(self, kind_id: str) -> bool:
        return self.is_kind_of(kind_id, LINK)

    def descendant_kinds(self, kind: Kind) -> list[Kind]:
        return [k for k in self.kinds() if kind in self.ancestry(k)]

    def depends_closure(self, mixin: Mixin) -> list[Mixin]:
        """The mixin and everything it depends on, transitively."""
        seen: list[Mixin] = []
        pending = [mixin]
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.append(current)
            pending.extend(m for d in current.depends if (m := self.mixin(d)) is not None)
        return seen

    def is_mixin_of(self, mixin_id: str, ancestor_id: str) -> bool:
        mixin = self.mixin(mixin_id)
        return mixin is not None and any(
            m.type_id == ancestor_id for m in self.depends_closure(mixin)
        )

    def applies_to(self, mixin: Mixin, kind: Kind) -> bool:
        """Whether the mixin (and what it depends on) may be attached to the kind."""
        ancestry = {k.type_id for k in self.ancestry(kind)}
        for current in self.depends_closure(mixin):
            if current.applies and not ancestry & set(current.applies):
                return False
        return True

    def attributes(self, kind: Kind, mixin_ids: Iterable[str] = ()) -> dict[str, Attribute]:
        """Every attribute definition an entity of this kind with these mixins has.

        Mixins come after the kind so that their defaults (templates) win."""
        key = (kind.type_id, tuple(mixin_ids))
        if key not in self._attributes or self.kind(kind.type_id) is not kind:
            self._attributes[key] = self._attributes_of(kind, key[1])
        return dict(self._attributes[key])

    def _attributes_of(self, kind: Kind, mixin_ids: tuple[str, ...]) -> dict[str, Attribute]:
        found: dict[str, Attribute] = {}
        for current in reversed(self.ancestry(kind)):
            for attribute in current.attributes:
                found[attribute.name] = attribute
        for mixin_id in mixin_ids:
            mixin = self.mixin(mixin_id)
            if mixin is None:
                continue
            for current in reversed(self.depends_closure(mixin)):
                for attribute in current.attributes:
                    found[attribute.name] = attribute
        return found

    def attribute_order(self, kind: Kind, mixin_ids: Iterable[str] = ()
                        ) -> tuple[tuple[str, ...], frozenset[str]]:
        """The order an entity's attributes are rendered in: id, title, summary,
        then the kind's and mixins' declarations (and the same as a set)."""
        key = (kind.type_id, tuple(mixin_ids))
        known = self._orders.get(key)
        if known is None or self.kind(kind.type_id) is not kind:
            names = list(FIRST_ATTRIBUTES)
            names += [n for n in self.attributes(kind, key[1]) if n not in FIRST_ATTRIBUTES]
            known = self._orders[key] = (tuple(names), frozenset(names))
        return known

    def rendered_order(self, kind_id: str, mixin_ids: Sequence[str], names: tuple[str, ...]
                       ) -> tuple[str, ...]:
        """An entity's attribute `names` in the order they are rendered (see
        `attribute_order`; those no kind or mixin declares last, by name):
        worked out once for each kind, mixins and set of names, as entities of a
        collection mostly share them."""
        key = (kind_id, tuple(mixin_ids), names)
        known = self._name_orders.get(key)
        if known is None:
            kind = self.kind(kind_id)
            order, declared = self.attribute_order(kind, key[1]) if kind \
                else (FIRST_ATTRIBUTES, frozenset(FIRST_ATTRIBUTES))
            present = set(names)
            known = (*(name for name in order if name in present),
                     *sorted(name for name in names if name not in declared))
            if len(self._name_orders) >= NAME_ORDERS_KEPT:
                self._name_orders.clear()  # clients' own attribute names: no bound of their own
            self._name_orders[key] = known
        return known

    def kind_attributes(self, kind: Kind) -> list[Attribute]:
        """Own and inherited attribute definitions of a kind, root first."""
        return list(self.attributes(kind).values())

    def mixin_attributes(self, mixin: Mixin) -> list[Attribute]:
        found: dict[str, Attribute] = {}
        for current in reversed(self.depends_closure(mixin)):
            for attribute in current.attributes:
                found[attribute.name] = attribute
        return list(found.values())

    def actions_of(self, kind: Kind, mixin_ids: Iterable[str] = ()) -> list[Action]:
        found: list[Action] = []
        for current in reversed(self.ancestry(kind)):
            found.extend(current.actions)
        for mixin_id in mixin_ids:
            mixin = self.mixin(mixin_id)
            if mixin is not None:
                for current in self.depends_closure(mixin):
                    found.extend(a for a in current.actions if a not in found)
        return found

    def state_machine(self, kind: Kind):  # -> StateMachine | None
        for current in self.ancestry(kind):
            if current.states is not None:
                return current.states
        return None
