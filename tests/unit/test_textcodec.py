"""The text rendering grammar (GFD.229 §4): splitting, values, categories, links."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from occi_server.core import Model
from occi_server.errors import BadRequest
from occi_server.kinds import builtin_categories
from occi_server.rendering.textcodec import (
    format_value,
    parse_attribute,
    parse_category,
    parse_link,
    parse_value,
    quote,
    render_attribute,
    render_category,
    split_outside_quotes,
    unescape,
)

MODEL = Model(builtin_categories())


def test_commas_inside_quotes_and_uris_do_not_split() -> None:
    value = 'a="x, y", b=2, </c,d>; rel="r", e=\'p,q\''
    assert split_outside_quotes(value, ",") == ['a="x, y"', "b=2", '</c,d>; rel="r"',
                                                "e='p,q'"]


def test_escaped_quote_does_not_end_a_string() -> None:
    assert split_outside_quotes(r'a="say \"hi, you\"", b=1', ",") == [
        r'a="say \"hi, you\""', "b=1"]


def test_unterminated_quote_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="unterminated"):
        split_outside_quotes('a="open, b=1', ",")


@pytest.mark.parametrize(("raw", "value"), [
    ('"text"', "text"), ("'single'", "single"), ("12", 12), ("1.5", 1.5), ("true", True),
    ("false", False), ('"12"', "12"), ("bare-token", "bare-token"), ("2.", 2.0),
])
def test_values(raw: str, value: object) -> None:
    parsed = parse_value(raw)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("value", "text"), [
    (1, "1"), (2.0, "2.0"), (1e-05, "0.00001"), (1e20, "100000000000000000000.0"),
    (True, "true"), ("a\"b", '"a\\"b"'), (-3, '"-3"'), ([1, 2], '"[1,2]"'),
])
def test_formatting_is_exact(value: object, text: str) -> None:
    assert format_value(value) == text


def test_newlines_stay_on_one_line() -> None:
    assert "\n" not in quote("line1\nline2")
    assert unescape(quote("line1\nline2")[1:-1]) == "line1\nline2"


def test_ascii_only_quoting_survives_headers() -> None:
    text = "café ☕ 𝄞"
    quoted = quote(text, ascii_only=True)
    assert quoted.isascii()
    assert unescape(quoted[1:-1]) == text


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_values = st.one_of(
    _text,
    st.integers(min_value=0, max_value=10**12),
    st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){0,3}", fullmatch=True)


@given(_values, st.booleans())
def test_value_round_trip(value: object, ascii_only: bool) -> None:
    assert parse_value(format_value(value, ascii_only=ascii_only)) == value


@given(_names, _values)
def test_attribute_round_trip(name: str, value: object) -> None:
    assert parse_attribute(render_attribute(name, value)) == (name, value)


@given(st.lists(st.tuples(_names, _values), min_size=1, max_size=6))
def test_comma_joined_attributes_round_trip(pairs: list[tuple[str, object]]) -> None:
    header = ", ".join(render_attribute(n, v) for n, v in pairs)
    assert [parse_attribute(item) for item in split_outside_quotes(header, ",")] == pairs


@pytest.mark.parametrize("category", MODEL.categories(), ids=lambda c: c.type_id)
def test_category_round_trip(category) -> None:
    parsed = parse_category(render_category(category, MODEL, full=True))
    assert (parsed.term, parsed.scheme, parsed.category_class) == (
        category.term, category.scheme, category.category_class)
    assert parsed.title == category.title
    assert parsed.location == getattr(category, "location", None)
    if category.category_class == "kind":
        assert parsed.attributes == [a.name for a in MODEL.kind_attributes(category)]
        assert parsed.actions == [a.type_id for a in category.actions]


def test_category_parameters_come_in_abnf_order() -> None:
    text = render_category(MODEL.get("http://schemas.ogf.org/occi/infrastructure#compute"),
                           MODEL, full=True)
    positions = [text.index(f"; {p}=") for p in
                 ("scheme", "class", "title", "rel", "location", "attributes", "actions")]
    assert positions == sorted(positions)


def test_lenient_category_parsing() -> None:
    parsed = parse_category("compute;scheme='http://schemas.ogf.org/occi/infrastructure#';"
                            "CLASS=kind;")
    assert parsed.type_id == "http://schemas.ogf.org/occi/infrastructure#compute"
    assert parsed.category_class == "kind"


@pytest.mark.parametrize("bad", [
    'compute; class="kind"',                      # no scheme
    'com pute; scheme="x#"; class="kind"',        # bad term
    'compute; scheme="x#"; class="thing"',        # bad class
    'compute; scheme',                            # not name=value
])
def test_bad_categories(bad: str) -> None:
    with pytest.raises(BadRequest):
        parse_category(bad)


def test_link_as_rocci_sends_it() -> None:
    link = parse_link('</storage/5401>;rel="http://schemas.ogf.org/occi/infrastructure#storage";'
                      'category="http://schemas.ogf.org/occi/infrastructure#storagelink";'
                      'occi.core.id="7c3";occi.core.target="/storage/5401"')
    assert link.target == "/storage/5401"
    assert link.target_kind == "http://schemas.ogf.org/occi/infrastructure#storage"
    assert link.kind == "http://schemas.ogf.org/occi/infrastructure#storagelink"
    assert link.attributes == {"occi.core.id": "7c3", "occi.core.target": "/storage/5401"}


def test_link_with_repeated_category_parameter() -> None:
    link = parse_link('</network/1>; rel="r#network"; category="k#networkinterface"; '
                      'category="m#ipnetworkinterface"')
    assert (link.kind, link.mixins) == ("k#networkinterface", ["m#ipnetworkinterface"])


def test_link_without_target_is_refused() -> None:
    with pytest.raises(BadRequest, match="<target>"):
        parse_link('rel="x"')
