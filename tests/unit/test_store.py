"""The store: migrations, persistence across restarts, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import event, select, text

from occi_server.core import Entity, Mixin
from occi_server.store import Store
from occi_server.store.records import entities as entity_records
from occi_server.store.records.base import Scope
from occi_server.store.records.usage import ACCOUNTED
from occi_server.store.repository import MIGRATIONS
from occi_server.store.tables import TOTALLED, entities, jobs, metadata, usage_events
from tests.conftest import COMPUTE, NETWORKINTERFACE, STORAGE, Client
from tests.support.postgres import find_bin, private_cluster, round_trip_counter


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if not find_bin("initdb"):
        pytest.skip("PostgreSQL server binaries are not installed (scripts/setup.sh --test "
                    "installs them)")
    with private_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path}/s.sqlite3" if request.param == "sqlite" \
        else request.getfixturevalue("postgres_url")
    store = Store(url)
    if request.param == "postgresql":
        _clean_slate(store)
    store.migrate()
    yield store
    store.dispose()


def _clean_slate(store: Store) -> None:
    """No table left of an earlier test in the module's PostgreSQL."""
    with store.engine.begin() as connection:
        metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def test_migrations_produce_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


@pytest.mark.parametrize("column", ["source_id", "target_id"])
def test_link_ends_are_indexed_for_links_alone_and_looked_up_through_it(
        store: Store, column: str) -> None:
    sqlite = store.is_sqlite
    with store.engine.begin() as connection:
        definition = connection.execute(text(
            "SELECT sql FROM sqlite_master WHERE name = :name" if sqlite else
            "SELECT indexdef FROM pg_indexes WHERE indexname = :name"),
            {"name": f"ix_entities_{column}"}).scalar_one()
        if not sqlite:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        lookup = select(entities.c.id).where(entities.c[column] == "x").compile(
            store.engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(
            f"EXPLAIN {'QUERY PLAN ' if sqlite else ''}{lookup}"))
    assert f"{column} IS NOT NULL" in definition.replace("(", "").replace(")", "")
    assert f"ix_entities_{column}" in plan


def test_the_running_jobs_are_found_through_an_index_of_their_own(store: Store) -> None:
    from occi_server.store.tables import RUNNING_JOBS
    with store.engine.begin() as connection:
        if not store.is_sqlite:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        running = select(jobs).where(RUNNING_JOBS).compile(store.engine)
        plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(
            f"EXPLAIN {'QUERY PLAN ' if store.is_sqlite else ''}{running}"))
    assert "ix_jobs_running" in plan


@pytest.mark.parametrize("scope", [None, Scope("t1", "alice")], ids=["operator", "tenant"])
def test_jobs_are_listed_newest_first_from_an_index(store: Store, scope: Scope | None) -> None:
    """Not by sorting the whole history, which grows with every create."""
    with store.transaction(write=True) as repo:
        for number in range(6):
            repo.insert_job(f"j{number}", Entity(id=f"e{number}", kind=COMPUTE,
                                                 location=f"/compute/e{number}",
                                                 tenant=f"t{number % 2}"), "creating", "")
    executed: list[tuple[str, object]] = []

    def seen(_connection, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if "FROM jobs" in statement:
            executed.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.transaction(write=False, scope=scope) as repo:
            listed = [job["id"] for job in repo.jobs(limit=2)]
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert listed == (["j5", "j4"] if scope is None else ["j5", "j3"])
    [(statement, parameters)] = executed
    with store.engine.begin() as connection:
        if not store.is_sqlite:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(
            f"EXPLAIN {'QUERY PLAN ' if store.is_sqlite else ''}{statement}", parameters))
    assert ("ix_jobs_created" if scope is None else "ix_jobs_tenant_created") in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_migrate_twice_is_harmless(store: Store) -> None:
    store.migrate()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_a_store_in_memory_keeps_what_is_written(url: str) -> None:
    """A database in memory (one process's, for trials) is a store like a file's."""
    store = Store(url)
    store.migrate()
    with store.transaction(write=True) as repo:
        repo.insert(Entity(id="c1", kind=COMPUTE, location="/compute/c1",
                           attributes={"occi.core.id": "c1"}))
    with store.transaction(write=False) as repo:
        assert [entity.location for entity in repo.list()] == ["/compute/c1"]
    store.dispose()


def test_entities_round_trip_with_mixins_and_links(store: Store) -> None:
    compute = Entity(id="c1", kind=COMPUTE, location="/compute/c1", mixins=["m#b", "m#a"],
                     attributes={"occi.core.id": "c1", "occi.compute.cores": 2,
                                 "occi.core.title": "é"})
    link = Entity(id="l1", kind="k#link", location="/link/l1", source="/compute/c1",
                  target="/network/n1", target_kind="k#network",
                  attributes={"occi.core.id": "l1"})
    with store.transaction(write=True) as repo:
        repo.insert(compute)
        repo.insert(link, source_id="c1")
    with store.transaction(write=False) as repo:
        found = repo.get("c1")
        assert found is not None
        assert (found.mixins, found.attributes) == (["m#b", "m#a"], compute.attributes)
        assert [x.location for x in repo.list(mixin_families=[["m#a"]])] == ["/compute/c1"]
        [stored_link] = repo.links_from(["c1"])["c1"]
        assert (stored_link.source, stored_link.target) == ("/compute/c1", "/network/n1")
    with store.transaction(write=True) as repo:
        repo.delete("c1")
    with store.transaction(write=False) as repo:
        assert repo.count() == 0


def test_an_update_of_attributes_alone_keeps_the_stored_mixins(store: Store) -> None:
    compute = Entity(id="c1", kind=COMPUTE, location="/compute/c1", mixins=["m#b", "m#a"],
                     attributes={"occi.core.id": "c1", "occi.compute.cores": 2})
    with store.transaction(write=True) as repo:
        repo.insert(compute)
    with store.transaction(write=True) as repo:
        found = repo.get("c1")
        assert found is not None
        found.attributes["occi.compute.cores"] = 4
        found.mixins = []  # not written: only the attributes are said to have changed
        repo.update(found, mixins=False)
    with store.transaction(write=True) as repo:
        found = repo.get("c1")
        assert found is not None
        assert (found.mixins, found.attributes["occi.compute.cores"]) == (["m#b", "m#a"], 4)
        found.mixins = ["m#a"]
        repo.update(found)
    with store.transaction(write=False) as repo:
        found = repo.get("c1")
        assert found is not None and found.mixins == ["m#a"]


def test_listed_entities_carry_their_attributes_as_stored(store: Store) -> None:
    """A listing decodes a page's or a chunk's attributes in one go: values
    with quotes, commas, brackets, line breaks and other scripts come back as
    they went in, each entity's its own."""
    odd = {"occi.core.title": 'a "quoted", [bracketed] {braced}\nsecond line ünïcödé 雲',
           "occi.compute.cores": 2, "nested": {"list": [1, "two", None, 3.5]}, "flag": False}
    with store.transaction(write=True) as repo:
        for name, attributes in (("a", odd), ("b", {}), ("c", {"occi.core.title": "c"})):
            repo.insert(Entity(id=name, kind=COMPUTE, location=f"/compute/{name}",
                               attributes=attributes))
    expected = {"a": odd, "b": {}, "c": {"occi.core.title": "c"}}
    with store.transaction(write=False) as repo:
        listed, _after = repo.chunk(after=None, limit=10, kinds=[COMPUTE])
        paged = repo.list(kinds=[COMPUTE], limit=10)
    assert {e.id: e.attributes for e in listed} == expected
    assert {e.id: e.attributes for e in paged} == expected


def test_a_long_listing_reads_each_entitys_own_mixins_links_and_sources(store: Store) -> None:
    """Mixins, links and the links' sources of a listing are read for all its
    entities at once, however many (ids of any characters): each comes back
    with its own, in order."""
    names = [f"c{number}" for number in range(1200)] + ['c"é\\']
    with store.transaction(write=True) as repo:
        for number, name in enumerate(names):
            repo.insert(Entity(id=name, kind=COMPUTE, location=f"/compute/{number}",
                               mixins=[f"m#{name}", "m#shared"][::1 if number % 2 else -1]
                               if number % 3 else []))
        for number, name in enumerate(names[::7]):
            repo.insert(Entity(id=f"l{number}", kind="k#link", location=f"/link/{number}",
                               source=f"/compute/{names.index(name)}", target="/network/n1"),
                        source_id=name)
    with store.transaction(write=False) as repo:
        computes = repo.list(kinds=[COMPUTE])
        links = repo.links_from([compute.id for compute in computes])
        listed_links = repo.list(kinds=["k#link"])
    numbers = {name: number for number, name in enumerate(names)}
    assert sorted(compute.id for compute in computes) == sorted(names)
    for compute in computes:
        number = numbers[compute.id]
        assert compute.mixins == ([f"m#{compute.id}", "m#shared"][::1 if number % 2 else -1]
                                  if number % 3 else [])
        assert [link.id for link in links[compute.id]] == (
            [f"l{number // 7}"] if number % 7 == 0 else [])
    assert sorted(link.source for link in listed_links) == sorted(
        f"/compute/{number}" for number in range(0, len(names), 7))


def test_collections_come_a_page_or_a_chunk_at_a_time_in_creation_order(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    instants = iter([datetime(2026, 1, 1, tzinfo=UTC)] * 4 + [datetime(2026, 1, 2, tzinfo=UTC)])
    monkeypatch.setattr(entity_records, "_now", lambda: next(instants))
    with store.transaction(write=True) as repo:
        for name in ("d", "b", "e", "a", "c"):  # ties broken by id
            repo.insert(Entity(id=name, kind=COMPUTE, location=f"/compute/{name}",
                               attributes={"occi.core.id": name}))
    order = ["a", "b", "d", "e", "c"]
    with store.transaction(write=False) as repo:
        assert [e.id for e in repo.list(kinds=[COMPUTE], offset=1, limit=2)] == order[1:3]
        light = repo.list(kinds=[COMPUTE], light=True)
        assert [(e.id, e.location, e.attributes) for e in light] == [
            (n, f"/compute/{n}", {}) for n in order]
        chunks, after = [], None
        while True:
            found, after = repo.chunk(after=after, limit=2, kinds=[COMPUTE])
            chunks.append([e.id for e in found])
            if after is None:
                break
        location_chunks, after = [], None
        while True:
            locations, after = repo.location_chunk(after=after, limit=2, kinds=[COMPUTE])
            location_chunks.append(locations)
            if after is None:
                break
    assert chunks == [["a", "b"], ["d", "e"], ["c"]]
    assert location_chunks == ["\n".join(f"/compute/{n}" for n in chunk).encode()
                               for chunk in chunks]
    with store.transaction(write=False) as repo:  # as many as asked for: no more to read
        assert repo.location_chunk(after=None, limit=5, kinds=[COMPUTE]) == (
            "\n".join(f"/compute/{n}" for n in order).encode(), None)


def test_a_tenants_location_list_reads_the_listing_index_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    with store.transaction(write=True) as repo:
        repo.insert(Entity(id="a", kind=COMPUTE, location="/compute/a"))
    statements: list[str] = []  # as run, their values written in
    with store.transaction(write=False, scope=Scope("t1", "alice")) as repo:
        driver = repo.connection.connection.dbapi_connection
        driver.set_trace_callback(statements.append)
        assert repo.location_chunk(after=None, limit=2, kinds=[COMPUTE]) == (b"", None)
        driver.set_trace_callback(None)
    store.dispose()
    listings = [sql for sql in statements if "entities.tenant" in sql]
    assert listings
    with closing(sqlite3.connect(path)) as raw:
        plans = [row[-1] for sql in listings for row in raw.execute("EXPLAIN QUERY PLAN " + sql)]
    # The members, read in the index's order (nothing sorted), joined as they come.
    assert plans == ["CO-ROUTINE members",
                     "SEARCH entities USING COVERING INDEX ix_entities_listing (kind=?)",
                     "SCAN members"]


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction(write=True) as repo:
        repo.insert(Entity(id="x", kind=COMPUTE, location="/compute/x"))
        raise RuntimeError("boom")
    with store.transaction(write=False) as repo:
        assert repo.get("x") is None


def test_locations_are_unique(store: Store) -> None:
    from occi_server.errors import Conflict
    with pytest.raises(Conflict), store.transaction(write=True) as repo:
        repo.insert(Entity(id="a", kind=COMPUTE, location="/compute/same"))
        repo.insert(Entity(id="b", kind=COMPUTE, location="/compute/same"))


def test_a_key_another_entity_holds_is_drawn_again(store: Store,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter(["0000000000aa", "0000000000aa", "0000000000aa", "0000000000bb"])
    monkeypatch.setattr(entity_records.secrets, "token_hex", lambda _size: next(draws))
    with store.transaction(write=True) as repo:
        repo.insert(Entity(id="a", kind=COMPUTE, location="/compute/a"))
        second = Entity(id="b", kind=COMPUTE, location="/compute/b")
        repo.insert(second)
    assert second.key == "0000000000bb"
    with store.transaction(write=False) as repo:
        assert [(e.id, e.key) for e in repo.list()] == [("a", "0000000000aa"),
                                                        ("b", "0000000000bb")]


def test_an_entity_is_read_back_with_the_times_and_values_it_was_written_with(
        store: Store) -> None:
    written = Entity(id="a", kind=COMPUTE, location="/compute/a", mixins=["m#x"],
                     attributes={"occi.core.id": "a", "n": 1.5, "list": [1, "é"], "none": None})
    with store.transaction(write=True) as repo:
        repo.insert(written)
    with store.transaction(write=False) as repo:
        read = repo.get("a")
        by_location = repo.by_location("/compute/a")
    assert read is not None and by_location is not None
    assert (read.attributes, read.mixins, read.key) == (written.attributes, ["m#x"], written.key)
    assert read.created is not None and written.created is not None
    assert (read.created.replace(tzinfo=None), read.updated) == (
        written.created.replace(tzinfo=None), read.created)
    assert by_location == read


def test_an_entitys_own_key_is_refused_when_another_holds_it(store: Store) -> None:
    from occi_server.errors import Conflict
    with store.transaction(write=True) as repo:
        repo.insert(Entity(id="a", kind=COMPUTE, location="/compute/a", key="0000000000aa"))
    with pytest.raises(Conflict), store.transaction(write=True) as repo:
        repo.insert(Entity(id="b", kind=COMPUTE, location="/compute/b", key="0000000000aa"))
    with store.transaction(write=False) as repo:
        assert [e.id for e in repo.list()] == ["a"]


def test_a_database_error_on_the_driver_is_unavailable_and_changes_nothing(
        tmp_path: Path) -> None:
    from occi_server.errors import BackendUnavailable
    store = Store(f"sqlite:///{tmp_path}/s.sqlite3")
    store.migrate()
    with store.transaction(write=True) as repo:
        repo.insert(Entity(id="a", kind=COMPUTE, location="/compute/a"))
        repo.connection.exec_driver_sql("DROP TABLE usage_events")  # accounting's insert fails
    with pytest.raises(BackendUnavailable), store.transaction(write=True) as repo:
        repo.insert(Entity(id="b", kind=COMPUTE, location="/compute/b"))
    with store.transaction(write=False) as repo:
        assert [e.id for e in repo.list()] == ["a"]
    store.dispose()


def test_writes_sent_with_a_later_statement_are_read_back_and_fail_their_transaction(
        store: Store) -> None:
    """On PostgreSQL accounting's events, mixins, jobs and totals wait to go
    with the transaction's next statement: what reads them sees them, and one
    that fails fails its transaction, whose other writes are not sent later."""
    from occi_server.errors import Conflict
    with store.transaction(write=True) as repo:
        written = Entity(id="a", kind=COMPUTE, location="/compute/a", mixins=["m#x", "m#y"])
        repo.insert_job("job-a", written, "create", "starting")
        repo.insert(written)
        assert repo.get("a").mixins == ["m#x", "m#y"]  # read on the driver
        assert [job["id"] for job in repo.jobs()] == ["job-a"]  # read by SQLAlchemy
        assert repo.totals("default")[COMPUTE]["count"] == 1
    with pytest.raises(Conflict), store.transaction(write=True) as repo:
        repo.insert(Entity(id="b", kind=COMPUTE, location="/compute/b", mixins=["m#x"]))
        repo.insert_job("job-a", written, "delete", "stopping")  # the id is taken
    with store.transaction(write=True) as repo:  # on the same connection, if pooled
        repo.update_job("job-a", state="done")
    with store.transaction(write=False) as repo:
        assert [e.id for e in repo.list()] == ["a"]
        assert [(job["id"], job["state"]) for job in repo.jobs()] == [("job-a", "done")]
        assert repo.totals("default")[COMPUTE]["count"] == 1
        assert [event["entity_id"] for event in repo.usage_events(
            until=datetime.now(UTC))] == ["a"]


def test_a_creates_and_a_deletes_writes_reach_postgresql_in_two_round_trips(
        postgres_url: str) -> None:
    """A create: BEGIN, the job and the entity (whose drawn key must be known
    free), then its mixins, accounting's event, the totals, the data
    generation and the COMMIT together (nine, each alone, after a ping of the
    connection). A delete: BEGIN and what goes (read), then the five deletes,
    the event, the totals, the generation and the COMMIT (twelve)."""
    with round_trip_counter(postgres_url) as (url, round_trips):
        store = Store(url)
        _clean_slate(store)
        store.migrate()
        for number in range(3):
            before = round_trips()
            with store.transaction(write=True) as repo:
                created = Entity(id=f"e{number}", kind=COMPUTE, location=f"/compute/e{number}",
                                 mixins=["m#x"])
                repo.insert_job(f"job{number}", created, "create", "starting")
                repo.insert(created)
        assert round_trips() - before == 2
        before = round_trips()
        with store.transaction(write=True) as repo:
            repo.delete("e1")
        assert round_trips() - before == 2
        with store.transaction(write=False) as repo:
            assert [e.id for e in repo.list()] == ["e0", "e2"]
        store.dispose()


def test_a_create_through_the_api_reaches_postgresql_in_seven_round_trips(
        make_app, postgres_url: str) -> None:
    """The request's transaction (with its quota check, read, and read again
    at commit with the tenant locked; a compute's reads no count of public
    addresses) in five, its job's in two (22 before the writes waited, 9
    before a quota check read only what the create grows)."""
    store = Store(postgres_url)
    _clean_slate(store)
    store.migrate()
    with round_trip_counter(postgres_url) as (url, round_trips):
        client = Client(make_app(database_url=url, reconcile_seconds=0))
        for _ in range(6):  # the model built, the statements prepared (at a fifth use)
            client.compute()
        before = round_trips()
        path = client.compute()
        deadline = time.monotonic() + 10
        while True:  # the job done, seen through a connection of its own
            with store.transaction(write=False) as repo:
                if repo.by_location(path).attributes["occi.compute.state"] == "active":
                    break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert round_trips() - before == 7
    store.dispose()


def test_a_connection_the_database_closed_is_replaced_before_use(postgres_url: str) -> None:
    """As after a restart of PostgreSQL: the pooled connections' backends are
    gone, and the next transaction runs on a new connection, without an
    error; an open connection is kept from one transaction to the next."""
    store = Store(postgres_url)
    connects = []
    event.listen(store.engine, "connect", lambda *_: connects.append(1))
    store.migrate()
    for _ in range(3):
        with store.transaction(write=False) as repo:
            repo.list()
    assert len(connects) == 1
    with closing(psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True)) as other:
        other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE pid <> pg_backend_pid() AND datname = current_database()")
        deadline = time.monotonic() + 10
        while other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid <> "
                            "pg_backend_pid() AND datname = current_database()"
                            ).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
    with store.transaction(write=True) as repo:
        repo.insert(Entity(id="after", kind=COMPUTE, location="/compute/after"))
    assert len(connects) == 2
    with store.transaction(write=False) as repo:
        assert "after" in [e.id for e in repo.list()]
    store.dispose()


CORES, MEMORY, SIZE = "occi.compute.cores", "occi.compute.memory", "occi.storage.size"


def _summed_afresh(repo, tenant: str) -> dict[str, dict[str, float]]:
    """A tenant's totals as its stored entities add up now."""
    found: dict[str, dict[str, float]] = {}
    for entity in repo.of_tenant(tenant):
        kind = found.setdefault(entity.kind, {"count": 0.0, CORES: 0.0, MEMORY: 0.0, SIZE: 0.0})
        kind["count"] += 1
        for name in (CORES, MEMORY, SIZE):
            kind[name] += entity.attributes.get(name, 0)
    return found


def test_a_tenants_totals_follow_every_write_of_its_entities(store: Store) -> None:
    alice, bob = Scope("alice", "a"), Scope("bob", "b")

    def compute(entity_id: str, cores: int, memory: float) -> Entity:
        return Entity(id=entity_id, kind=COMPUTE, location=f"/compute/{entity_id}",
                      attributes={"occi.core.id": entity_id, CORES: cores, MEMORY: memory})

    with store.transaction(write=True, scope=alice) as repo:
        repo.insert(compute("c1", 2, 1.5))
        repo.insert(compute("c2", 1, 0.1))
        repo.insert(Entity(id="s1", kind=STORAGE, location="/storage/s1",
                           attributes={"occi.core.id": "s1", SIZE: 0.2}))
        repo.insert(Entity(id="l1", kind=NETWORKINTERFACE, location="/link/l1",
                           source="/compute/c1", target="/network/n1",
                           attributes={"occi.core.id": "l1"}), source_id="c1")
        assert repo.everywhere().totals("alice")[COMPUTE] == \
            {"count": 2, CORES: 3, MEMORY: 1.6, SIZE: 0}  # its own writes, before it ends
    with store.transaction(write=True, scope=bob) as repo:
        repo.insert(compute("c3", 8, 16))
    with store.transaction(write=True, scope=alice) as repo:
        resized = repo.get("c1")
        resized.attributes.update({CORES: 4, "occi.compute.state": "active"})
        repo.update(resized)
    with store.transaction(write=True, scope=alice) as repo:  # changed as written, unread
        written = compute("c2", 3, 0.3)
        written.tenant, written.updated = "alice", repo.get("c2").updated
        assert repo.update_unless_changed(written)
    with store.transaction(write=True, scope=alice) as repo:  # no history to compare with
        repo.connection.execute(usage_events.delete().where(usage_events.c.entity_id == "s1"))
        volume = Entity(id="s1", kind=STORAGE, location="/storage/s1", tenant="alice",
                        attributes={"occi.core.id": "s1", SIZE: 0.7})
        repo.update(volume)
    with store.transaction(write=True, scope=alice) as repo:
        repo.insert(compute("c4", 1, 0.5))
        repo.delete("c1")  # with its interface
    with store.transaction(write=False) as repo:
        totals = {tenant: repo.totals(tenant) for tenant in ("alice", "bob", "carol")}
        afresh = {tenant: _summed_afresh(repo, tenant) for tenant in ("alice", "bob", "carol")}
    assert totals["alice"] == {COMPUTE: {"count": 2, CORES: 4, MEMORY: 0.8, SIZE: 0},
                               STORAGE: {"count": 1, CORES: 0, MEMORY: 0, SIZE: 0.7}}
    assert totals["bob"] == {COMPUTE: {"count": 1, CORES: 8, MEMORY: 16, SIZE: 0}}
    assert totals["carol"] == {}
    assert totals == afresh


def test_what_the_totals_sum_is_what_accounting_records() -> None:
    # A change of a totalled attribute is seen where accounting records changes.
    assert set(TOTALLED.values()) <= set(ACCOUNTED)


def test_run_time_mixins_persist(store: Store) -> None:
    mixin = Mixin("http://example.com/t#", "tag", title="Tag", location="/tag/", origin="user")
    with store.transaction(write=True) as repo:
        repo.insert_mixin(mixin)
    with store.transaction(write=False) as repo:
        assert [(m.type_id, m.location, m.origin) for m in repo.mixins()[0]] == [
            ("http://example.com/t#tag", "/tag/", "user")]


def test_every_change_the_model_is_built_from_moves_its_generation(store: Store) -> None:
    def generation() -> int:
        with store.transaction(write=False) as repo:
            return repo.model_generation()

    mixin = Mixin("http://example.com/t#", "tag", title="Tag", location="/tag/", origin="user")
    seen = [generation()]
    for change in (lambda repo: repo.insert_mixin(mixin),
                   lambda repo: repo.delete_mixin(mixin.type_id),
                   lambda repo: repo.save_endorsement("i", "CN=A", datetime.now(UTC), {}),
                   lambda repo: repo.deprecate_image("i")):
        with store.transaction(write=True) as repo:
            change(repo)
        seen.append(generation())
    assert seen == sorted(set(seen)), seen  # each one moved it on
    with store.transaction(write=True) as repo:
        repo.deprecate_image("unknown")  # changes nothing
    assert generation() == seen[-1]


def test_state_survives_a_restart(make_app) -> None:
    first = Client(make_app())
    path = first.compute('X-OCCI-Attribute: occi.core.title="persistent"')
    first.post_text("/-/", ['Category: t; scheme="http://example.com/t#"; class="mixin"; '
                            'location="/t/"'])
    first.post_text("/t/", [f"X-OCCI-Location: {path}"])
    first.app.extensions["occi.store"].dispose()
    second = Client(make_app())
    document = second.json(path)
    assert document["title"] == "persistent"
    assert "http://example.com/t#t" in document["mixins"]


def test_the_service_runs_on_postgresql(make_app, postgres_url: str) -> None:
    store = Store(postgres_url)
    _clean_slate(store)
    store.dispose()
    client = Client(make_app(database_url=postgres_url))
    network = client.network()
    path = client.compute(f'Link: <{network}>; rel="http://schemas.ogf.org/occi/'
                          'infrastructure#network"')
    assert client.json(path)["links"][0]["attributes"]["occi.networkinterface.address"] == \
        "10.9.0.2"
    assert client.request("DELETE", path).status_code == 200


def test_a_site_moves_its_store_from_sqlite_to_postgresql(make_app, postgres_url: str,
                                                          tmp_path: Path, capsys) -> None:
    from occi_server.cli import main as occi_server
    target = Store(postgres_url)
    _clean_slate(target)  # an empty database
    target.dispose()
    data = tmp_path / "data"
    before = Client(make_app(data_dir=str(data)))
    network = before.network("10.9.0.0/24", "10.9.0.1")
    compute = before.compute()
    before.post_text("/link/networkinterface/", [
        'Category: networkinterface; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
        'class="kind"', f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{network}"'])
    assert before.post_text("/-/", ['Category: my_tag; scheme="http://example.org/tags#"; '
                                    'class="mixin"; location="/mixin/my_tag/"']
                            ).status_code in (200, 201)
    assert occi_server(["copy-store", postgres_url, "--data-dir", str(data)]) == 0
    assert "entities: 3 rows" in capsys.readouterr().out
    after = Client(make_app(data_dir=str(data), database_url=postgres_url))
    assert after.json(compute)["links"][0]["attributes"]["occi.networkinterface.address"] == \
        "10.9.0.2"
    assert after.json(compute) == before.json(compute)
    assert "my_tag" in after.get("/-/").get_data(as_text=True)
    # The address stays taken in the new store; a second copy is refused.
    assert after.json(after.post_text("/link/networkinterface/", [
        'Category: networkinterface; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
        'class="kind"', f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{network}"']).headers["Location"].removeprefix(
        "http://localhost"))["attributes"]["occi.networkinterface.address"] == "10.9.0.3"
    assert occi_server(["copy-store", postgres_url, "--data-dir", str(data)]) == 1
    assert "already has" in capsys.readouterr().err


def test_an_older_store_keeps_its_entities_and_gets_their_history(tmp_path: Path) -> None:
    """Upgrading a store made before tenants: every entity stays, belongs to the
    default tenant, and starts its accounting history as created when it was."""
    store = Store(f"sqlite:///{tmp_path}/old.sqlite3")
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(text(
            "INSERT INTO entities (id, kind, location, attributes, created, updated) VALUES "
            "('c1', :kind, '/compute/c1', :attributes, '2025-01-02 00:00:00', "
            "'2025-01-02 00:00:00')"), {"kind": COMPUTE, "attributes": json.dumps(
                {"occi.core.id": "c1", "occi.compute.cores": 2, "occi.compute.state": "active"})})
        connection.execute(text("INSERT INTO entity_mixins (entity_id, mixin, position) "
                                "VALUES ('c1', 'm#a', 0)"))
    store.migrate()
    with store.transaction(write=False) as repo:
        [compute] = repo.list()
        [event] = repo.connection.execute(select(usage_events)).all()
    assert (compute.tenant, compute.attributes["occi.compute.cores"], compute.mixins) == \
        ("default", 2, ["m#a"])
    assert (event.entity_id, event.event, event.state, event.tenant, event.time.year) == \
        ("c1", "created", "active", "default", 2025)
    assert event.details == {"attributes": {"occi.compute.cores": 2}, "mixins": ["m#a"]}
    with store.transaction(write=False) as repo:
        assert repo.totals("default") == {COMPUTE: {"count": 1, "occi.compute.cores": 2,
                                                    "occi.compute.memory": 0,
                                                    "occi.storage.size": 0}}
