"""Categories (Kind, Mixin, Action) and attribute definitions, as immutable data.

Everything the server says about its model (`/-/`, validation, defaults, JSON
schema enums) derives from these objects."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar


class AttrType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    ARRAY = "array"
    OBJECT = "object"

    @property
    def json_type(self) -> str:
        """The JSON rendering's type name (GFD.226 knows no integer/float split)."""
        return "number" if self in (AttrType.INTEGER, AttrType.FLOAT) else self.value


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


# What no stored text may hold: lone UTF-16 surrogates (no encoding can write
# them out again) and control characters but tab, newline and carriage return
# (response headers and naive parsers break on them).
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def check_text(value: Any) -> None:
    """Refuse (ValueError) text, also inside lists and objects, that could not be
    rendered back in every rendering."""
    if isinstance(value, str):
        found = _UNWRITABLE.search(value)
        if found:
            raise ValueError(f"the character U+{ord(found.group()):04X} is not allowed in text "
                             "(no control characters or lone surrogates)")
    elif isinstance(value, list):
        for item in value:
            check_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            check_text(item)


def _check_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network in CIDR notation ({exc})") from None


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


def _check_mac(value: str) -> str:
    mac = value.lower().replace("-", ":")
    if not _MAC.fullmatch(mac):
        raise ValueError(f"{value!r} is not a MAC address like 52:54:00:12:34:56")
    return mac


def _check_hostname(value: str) -> str:
    if not _HOSTNAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid host name (letters, digits, '-' and '.', "
            "labels of at most 63 characters)"
        )
    return value


FORMATS = {
    "cidr": _check_cidr,
    "ip": _check_ip,
    "mac": _check_mac,
    "hostname": _check_hostname,
}


@dataclass(frozen=True)
class Attribute:
    """An attribute definition (GFD.221 §4.4 Attribute)."""

    name: str
    type: AttrType = AttrType.STRING
    mutable: bool = True
    required: bool = False
    default: Any = None
    description: str = ""
    enum: tuple[str, ...] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    pattern: str | None = None
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None

    def coerce(self, value: Any) -> Any:
        """Return `value` converted to this attribute's type, or raise ValueError
        with a message naming the attribute and what was expected."""
        try:
            converted = self._convert(value)
            check_text(converted)
            self._check(converted)
        except ValueError as exc:
            raise ValueError(f"attribute {self.name}: {exc}") from None
        return converted

    def _convert(self, value: Any) -> Any:
        match self.type:
            case AttrType.STRING:
                if isinstance(value, bool):
                    return "true" if value else "false"
                if isinstance(value, int | float):
                    return _plain_number(value)
                if isinstance(value, str):
                    return value
            case AttrType.INTEGER:
                if isinstance(value, bool):
                    raise ValueError(f"expected an integer, got {value!r}")
                if isinstance(value, int):
                    return value
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
                    return int(value)
                raise ValueError(f"expected an integer, got {value!r}")
            case AttrType.FLOAT:
                if isinstance(value, bool):
                    raise ValueError(f"expected a number, got {value!r}")
                number: float | None = None
                if isinstance(value, int | float):
                    number = float(value)
                elif isinstance(value, str):
                    try:
                        number = float(value)
                    except ValueError:
                        number = None
                if number is None or not math.isfinite(number):
                    raise ValueError(f"expected a number, got {value!r}")
                return number
            case AttrType.BOOLEAN:
                if isinstance(value, bool):
                    return value
                if isinstance(value, str) and value.lower() in ("true", "false"):
                    return value.lower() == "true"
                raise ValueError(f"expected true or false, got {value!r}")
            case AttrType.ARRAY | AttrType.OBJECT:
                wanted = list if self.type is AttrType.ARRAY else dict
                if isinstance(value, str):
                    with contextlib.suppress(ValueError):
                        value = json.loads(value)
                if isinstance(value, wanted):
                    return value
                raise ValueError(f"expected a JSON {self.type.value}, got {value!r}")
        raise ValueError(f"expected a {self.type.value}, got {value!r}")

    def _check(self, value: Any) -> None:
        if self.enum is not None:
            value = self.aliases.get(value, value)
            if value not in self.enum:
                raise ValueError(f"{value!r} is not one of {', '.join(self.enum)}")
        if self.max_length is not None and isinstance(value, str) \
                and len(value) > self.max_length:
            raise ValueError(f"longer than {self.max_length} characters")
        if self.pattern is not None and isinstance(value, str) \
                and not re.fullmatch(self.pattern, value):
            raise ValueError(f"{value!r} does not match {self.pattern}")
        if self.format is not None and isinstance(value, str):
            FORMATS[self.format](value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"{value} is below the minimum {_plain_number(self.minimum)}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"{value} is above the maximum {_plain_number(self.maximum)}")

    def normalise(self, value: Any) -> Any:
        """Coerce, then map enum aliases and formats to their canonical spelling."""
        value = self.coerce(value)
        if self.enum is not None:
            value = self.aliases.get(value, value)
        if self.format is not None and isinstance(value, str):
            value = FORMATS[self.format](value)
        return value

    def json_pattern(self) -> dict[str, Any]:
        """The JSON Schema object the JSON rendering publishes as `pattern`."""
        schema: dict[str, Any] = {"type": self.type.json_type}
        if self.type is AttrType.INTEGER:
            schema["type"] = "integer"
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.pattern is not None:
            schema["pattern"] = f"^(?:{self.pattern})$"
        if self.format is not None:
            schema["format"] = {"cidr": "cidr", "ip": "ip-address", "mac": "mac-address",
                                "hostname": "hostname"}[self.format]
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return schema

    def with_default(self, default: Any) -> Attribute:
        """The same definition carrying another default (templates use this)."""
        return Attribute(**{**self.__dict__, "default": default})


def _plain_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, eq=False)
class Category:
    """A type identifier (scheme + term) with a title and attribute definitions."""

    scheme: str
    term: str
    title: str = ""
    attributes: tuple[Attribute, ...] = ()

    category_class: ClassVar[str] = "category"

    @property
    def type_id(self) -> str:
        return self.scheme + self.term

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Category) and other.type_id == self.type_id

    def __hash__(self) -> int:
        return hash(self.type_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type_id}>"


@dataclass(frozen=True, eq=False, repr=False)
class Action(Category):
    """An operation; its attributes are the parameters."""

    category_class: ClassVar[str] = "action"


@dataclass(frozen=True, eq=False, repr=False)
class Kind(Category):
    """The type of an entity: its parent kind, actions and collection location."""

    parent: str | None = None
    actions: tuple[Action, ...] = ()
    location: str | None = None
    states: Any = None  # a StateMachine, when the kind's actions depend on its state

    category_class: ClassVar[str] = "kind"


@dataclass(frozen=True, eq=False, repr=False)
class Mixin(Category):
    """A mixin: extra attributes/actions for entities, or a template or tag.

    `origin` says who may change it: "builtin" and "provider" mixins are the
    site's own (403 on delete), "user" mixins are created through `/-/`.
    `managed` mixins are attached by the server only (clients may not add or
    remove them)."""

    depends: tuple[str, ...] = ()
    applies: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    location: str | None = None
    origin: str = "builtin"
    managed: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)

    category_class: ClassVar[str] = "mixin"
