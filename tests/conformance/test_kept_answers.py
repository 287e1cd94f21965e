"""GET answers a worker keeps in memory: sent again only while nothing they
show has changed, whoever changed it, and only to whom they were made for."""

from __future__ import annotations

import weakref

import pytest
from sqlalchemy import event

from occi_server.http.answers import Answer, Answers
from occi_server.store import Generations
from tests.conftest import Client
from tests.support.tenants import basic, client_of, site_users

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
STOP = 'Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#"; ' \
       'class="action"'


def transactions(client: Client, path: str, **kwargs) -> tuple[int, int]:
    """(status, transactions begun) of a GET."""
    begun: list[object] = []
    engine = client.app.extensions["occi.store"].engine

    def count(connection: object) -> None:
        begun.append(connection)

    event.listen(engine, "begin", count)
    try:
        status = client.get(path, **kwargs).status_code
    finally:
        event.remove(engine, "begin", count)
    return status, len(begun)


def test_a_change_through_another_front_end_shows_in_the_next_get(make_app) -> None:
    """Two apps on one store stand for two workers (or front ends): what one
    changes, the other's next GET shows, though it had the answer in memory."""
    reader, writer = Client(make_app()), Client(make_app())
    compute = writer.compute()
    for media in ("text/plain", "application/occi+json"):
        reader.get(compute, accept=media)
    assert transactions(reader, compute) == (200, 0)  # kept
    renamed = writer.post_text(compute, [f'Category: compute; scheme="{INFRA}"; class="kind"',
                                         'X-OCCI-Attribute: occi.core.title="renamed"'])
    assert renamed.status_code == 200
    assert reader.attributes(compute)["occi.core.title"] == "renamed"
    assert 'occi.core.title="renamed"' in reader.get(compute).get_data(as_text=True)
    assert writer.post_text(f"{compute}?action=stop", [STOP]).status_code == 200
    assert reader.attributes(compute)["occi.compute.state"] == "inactive"
    assert writer.request("DELETE", compute).status_code == 200
    assert reader.get(compute).status_code == 404


def test_a_mixin_made_through_another_front_end_shows_in_the_next_discovery(make_app) -> None:
    reader, writer = Client(make_app()), Client(make_app())
    assert "my_stuff" not in reader.get("/-/").get_data(as_text=True)
    assert transactions(reader, "/-/") == (200, 0)
    made = writer.post_text("/-/", ['Category: my_stuff; scheme="http://example.org/my#"; '
                                    'class="mixin"; location="/my_stuff/"'])
    assert made.status_code == 200
    assert "my_stuff" in reader.get("/-/").get_data(as_text=True)


def test_an_answer_kept_for_one_tenant_is_sent_to_no_other(make_app) -> None:
    app = make_app(auth="basic", users=site_users())
    alice, bob, root = (client_of(app, user) for user in ("alice", "bob", "root"))
    compute = alice.compute()
    assert alice.get(compute).status_code == 200
    assert transactions(alice, compute) == (200, 0)
    assert bob.get(compute).status_code == 404
    assert root.get(compute).status_code == 200  # the operator sees every tenant
    assert bob.get(compute).status_code == 404


def test_each_rendering_and_host_gets_its_own_answer(client: Client) -> None:
    compute = client.compute()
    plain = client.get(compute).get_data(as_text=True)
    as_json = client.get(compute, accept="application/occi+json")
    assert as_json.get_json()["id"] in plain
    other_host = client.get(compute, accept="application/occi+json",
                            headers={"Host": "cloud.example.org:8443"})
    assert as_json.get_json() == other_host.get_json()  # locations are paths
    in_headers = [client.get(compute, accept="text/occi") for _ in range(2)]
    assert [r.get_data() for r in in_headers] == [b"OK", b"OK"]  # text/occi: all in headers
    assert in_headers[0].headers.getlist("X-OCCI-Attribute") \
        == in_headers[1].headers.getlist("X-OCCI-Attribute")
    assert as_json.get_json()["id"] in in_headers[1].headers["X-OCCI-Attribute"]
    assert client.get(compute).get_data(as_text=True) == plain


def test_filtered_and_paged_reads_are_answered_afresh(client: Client) -> None:
    client.compute()
    assert transactions(client, "/-/") == (200, 1)
    filtered = {"Category": f'storage; scheme="{INFRA}"; class="kind"'}
    for _ in range(2):
        assert transactions(client, "/-/", headers=filtered) == (200, 1)
        assert transactions(client, "/compute/?page=1&number=1") == (200, 1)


def test_live_computes_are_read_every_time(app, client: Client,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A compute whose hypervisor is asked for its state is not kept: the
    hypervisor may say something else the next time."""
    compute = client.compute()
    backend = app.extensions["occi.service"].backends.compute
    said = iter(["inactive", "suspended"])
    monkeypatch.setattr(backend, "observes", True)
    monkeypatch.setattr(backend, "current_state", lambda _e: {"occi.compute.state": next(said)})
    assert client.attributes(compute)["occi.compute.state"] == "inactive"
    assert client.attributes(compute)["occi.compute.state"] == "suspended"


def test_none_kept_when_the_setting_is_zero(make_app) -> None:
    client = Client(make_app(answer_cache_bytes=0))
    compute = client.compute()
    for _ in range(2):
        assert transactions(client, compute) == (200, 1)
        assert transactions(client, "/-/") == (200, 1)


def test_an_answer_from_memory_is_the_one_flask_gave(client: Client) -> None:
    compute = client.compute()
    for media in ("text/plain", "text/occi", "application/occi+json"):
        fresh, kept = (client.get(compute, accept=media) for _ in range(2))
        assert transactions(client, compute, accept=media) == (200, 0)
        assert (kept.status, kept.get_data()) == (fresh.status, fresh.get_data())
        assert [h for h in kept.headers if h[0] != "X-Request-Id"] \
            == [h for h in fresh.headers if h[0] != "X-Request-Id"]
        assert kept.headers["X-Request-Id"] != fresh.headers["X-Request-Id"]
    head = client.http.head(compute, headers={"Accept": "text/plain", "X-Request-Id": "r-42"})
    assert (head.status_code, head.get_data()) == (200, b"")
    assert head.headers["Content-Length"] == str(len(client.get(compute).get_data()))
    assert head.headers["X-Request-Id"] == "r-42"


def test_kept_answers_pass_the_same_gate(make_app, caplog) -> None:
    app = make_app(auth="basic", users=site_users(), rate_limit_authenticated="4/day")
    alice = client_of(app, "alice")
    compute = alice.compute()  # counts one
    assert [alice.get(compute).status_code for _ in range(3)] == [200, 200, 200]
    refused = alice.get(compute)  # the fifth of the day
    assert refused.status_code == 429 and "at most 4 per 86400 s" in refused.get_data(True)
    assert int(refused.headers["Retry-After"]) >= 1
    assert Client(app).get(compute).status_code == 401
    newer = client_of(make_app(auth="basic", users=site_users()), "alice")
    newer.get(compute)
    with caplog.at_level("INFO", logger="occi_server.http"):
        kept = newer.get(compute, headers={"User-Agent": "rOCCI-cli OCCI/1.2"})
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("request ")
              and getattr(r, "request_id", None) == kept.headers["X-Request-Id"]]
    assert line.startswith(f'request method=GET path="{compute}" status=200')
    later = newer.get(compute, headers={"User-Agent": "some-client OCCI/2.0"})
    assert later.status_code == 501


def test_collections_are_kept_until_a_member_changes(make_app) -> None:
    reader, writer = Client(make_app(default_page_size=0)), Client(make_app())
    computes = {writer.compute() for _ in range(3)}
    for media in ("text/uri-list", "text/plain", "application/occi+json"):
        first = reader.get("/compute/", accept=media).get_data()  # sent as it is read
        assert transactions(reader, "/compute/", accept=media) == (200, 0)
        assert reader.get("/compute/", accept=media).get_data() == first
    assert set(reader.get("/compute/", accept="text/uri-list").get_data(True).split()) \
        == {f"http://localhost{c}" for c in computes}
    renamed = computes.pop()
    writer.post_text(renamed, [f'Category: compute; scheme="{INFRA}"; class="kind"',
                               'X-OCCI-Attribute: occi.core.title="renamed"'])
    titles = [r["attributes"].get("occi.core.title")
              for r in reader.json("/compute/")["resources"]]
    assert "renamed" in titles
    assert writer.request("DELETE", renamed).status_code == 200
    assert set(reader.get("/compute/", accept="text/uri-list").get_data(True).split()) \
        == {f"http://localhost{c}" for c in computes}


def test_a_collection_read_while_something_changed_is_not_kept(app) -> None:
    model = app.extensions["occi.service"].builtin
    answers, began = Answers(1 << 20), Generations(model=3, data=5)
    for now, kept in ((Generations(3, 6), None), (began, b"ab")):
        sent = answers.kept_as_sent("key", iter([b"a", b"b"]),
                                    Answer(b"", "text/plain", (), began, weakref.ref(model)),
                                    lambda now=now: now)
        assert b"".join(sent) == b"ab"
        found = answers.find("key")
        assert (found.body if found else None) == kept


def test_answers_larger_than_an_eighth_of_the_room_are_not_kept(make_app) -> None:
    client = Client(make_app(answer_cache_bytes=4 * 1024))
    compute = client.compute()
    assert len(client.get(compute, accept="application/occi+json").get_data()) > 512
    assert transactions(client, compute, accept="application/occi+json") == (200, 1)
    assert transactions(client, "/-/") == (200, 1)


def test_a_request_is_authenticated_once(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer path hands what it found to Flask: a refused user costs one
    slow hash, not two."""
    from occi_server.identity import authenticate

    hashed: list[str] = []
    slow = authenticate.check_password_hash

    def counted(stored: str, password: str) -> bool:
        hashed.append(password)
        return slow(stored, password)

    monkeypatch.setattr(authenticate, "check_password_hash", counted)
    app = make_app(auth="basic", users=site_users())
    assert client_of(app, "alice").get("/-/").status_code == 200  # its origin now known
    hashed.clear()
    stranger = client_of(app, "alice")
    stranger.http.environ_base["HTTP_AUTHORIZATION"] = basic("mallory", "guess")
    assert stranger.get("/-/").status_code == 401
    assert hashed == ["guess"]
