"""Properties over HTTP (hypothesis, through the WSGI app): whatever bytes come
as body, header or path, the answer is never a 5xx; and whatever entity the
server accepted renders in every rendering, each of which reads back as the
same entity."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from occi_server.kinds.tenancy import QUOTAS
from occi_server.rendering.base import RenderContext, RequestData
from occi_server.rendering.json import JsonParser
from occi_server.rendering.text import TextOcciParser, TextPlainParser
from tests.conftest import COMPUTE, CRTP, NETWORK, STORAGE, Client

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
MEDIA = ["text/plain", "text/occi", "application/occi+json", "text/uri-list",
         "application/json", "text/plain,text/occi", "", "application/x-whatever"]
PATHS = ["/", "/-/", "/compute/", "/storage/", "/link/", "/mixin/resource_tpl/", "STORED",
         "STORED?action=stop", "/compute/?page=1&number=1", "/jobs/", "/quota/"]
# Header values an HTTP client can send: no CR or LF.
HEADER_TEXT = st.text(st.characters(max_codepoint=255, blacklist_characters="\r\n"),
                      max_size=200)


@SETTINGS
@given(body=st.binary(max_size=2000), media=st.sampled_from(MEDIA),
       accept=st.sampled_from(MEDIA), path=st.sampled_from(PATHS),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]))
def test_any_bytes_as_a_body_never_get_a_5xx(client: Client, body: bytes, media: str,
                                             accept: str, path: str, method: str) -> None:
    path = path.replace("STORED", _stored(client))
    response = client.request(method, path, data=body,
                              headers={"Content-Type": media, "Accept": accept})
    assert response.status_code < 500, (method, path, response.get_data(as_text=True))


@SETTINGS
@given(headers=st.dictionaries(st.sampled_from(
    ["Category", "X-OCCI-Attribute", "Link", "X-OCCI-Location", "Location", "Accept",
     "Content-Type", "X-Tenant", "User-Agent", "Authorization", "X-Request-Id"]),
    HEADER_TEXT, max_size=4),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), path=st.sampled_from(PATHS))
def test_any_header_values_never_get_a_5xx(client: Client, headers: dict[str, str],
                                           method: str, path: str) -> None:
    path = path.replace("STORED", _stored(client))
    response = client.request(method, path, headers=headers)
    assert response.status_code < 500, (method, path, headers, response.get_data())


@SETTINGS
@given(raw=st.text(max_size=120), method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
def test_any_path_never_gets_a_5xx(client: Client, raw: str, method: str) -> None:
    path = "/" + quote(raw.encode("utf-8", "surrogatepass"), safe="/?&=")
    # The request target exactly as a WSGI server hands it over (gunicorn:
    # PATH_INFO percent-decoded as Latin-1); the test client would read a
    # target such as //host… as an authority, not as a path.
    target, _, query = path.partition("?")
    response = client.request(method, "/", headers={"Accept": "text/occi"}, environ_overrides={
        "PATH_INFO": unquote(target, encoding="latin-1"), "QUERY_STRING": query})
    assert response.status_code < 500, (method, path, response.get_data())
    for name, value in response.headers.items():
        assert value.isprintable() and value.isascii(), (name, value)


TITLES = st.text(max_size=60)


@pytest.fixture
def roomy(make_app) -> Client:
    """A site without quotas: every example may create."""
    return Client(make_app(quotas={"default": dict.fromkeys(QUOTAS, -1)}))


@SETTINGS
@given(kind=st.sampled_from([COMPUTE, STORAGE, NETWORK]), title=TITLES, summary=TITLES,
       template=st.sampled_from([None, CRTP + "small", CRTP + "large"]))
def test_what_the_server_accepts_reads_back_the_same_in_every_rendering(
        roomy: Client, kind: str, title: str, summary: str, template: str | None) -> None:
    client = roomy
    document = {"kind": kind, "attributes": {"occi.core.title": title,
                                             "occi.core.summary": summary}}
    if template and kind == COMPUTE:
        document["mixins"] = [template]
    if kind == STORAGE:
        document["attributes"]["occi.storage.size"] = 1.5
    created = client.post_json(f"/{kind.rpartition('#')[2]}/", document)
    if created.status_code != 201:  # text it cannot render back, refused: nothing to read
        assert created.status_code == 400, created.get_data(as_text=True)
        return
    location = created.headers["Location"].removeprefix("http://localhost")
    ctx = RenderContext(model=client.app.extensions["occi.service"].builtin,
                        base_url="http://localhost")
    readings = {}
    for media, parser in (("text/plain", TextPlainParser()), ("text/occi", TextOcciParser()),
                          ("application/occi+json", JsonParser())):
        response = client.get(location, accept=media)
        assert response.status_code == 200, response.get_data()
        data = RequestData(body=response.get_data(), headers=list(response.headers.items()))
        [spec] = parser.entities(data, ctx)
        readings[media] = (spec.kind, sorted(spec.mixins), {
            name: value for name, value in spec.attributes.items()
            if not name.endswith((".state", ".message"))})
    first = readings["application/occi+json"]
    assert first[0] == kind and first[2]["occi.core.title"] == title
    assert all(reading == first for reading in readings.values()), readings
    assert location in client.get(f"/{kind.rpartition('#')[2]}/", accept="text/uri-list",
                                  query_string={"number": 1000}).get_data(as_text=True)


def _stored(client: Client) -> str:
    """One compute the requests may act on (made once per test)."""
    cache = client.__dict__.setdefault("_stored", [])
    if not cache:
        cache.append(client.compute('X-OCCI-Attribute: occi.core.title="stored"'))
    return cache[0]
