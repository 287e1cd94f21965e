"""IP reservations (rOCCI-server 2's ipreservation kind, pools as the site's
floatingippool mixins): an address of a pool held by the store (never twice,
however many requests race), counted by the public_ips quota, led to one
compute at a time through a networkinterface to it, moved, released. The
simulated network backend keeps what is published; the kernel's 1:1 NAT is
tests/integration/test_ip_reservations.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import IPNETWORK, NETWORK, NETWORKINTERFACE, SITE, Client, category

IPRESERVATION = "http://schemas.ogf.org/occi/infrastructure#ipreservation"
POOL = f"{SITE}floatingippool#"
PUBLIC = "http://schemas.occi-server.org/occi/infrastructure/network#public"
POOLS = {"public": "192.0.2.128/28", "lab": "198.51.100.0/30"}


def reserving(make_app, **settings) -> Client:
    return Client(make_app(floating_ip_pools=settings.pop("pools", POOLS), **settings))


def reserve(client: Client, *lines: str, pool: str | None = "public"):
    body = [category(IPRESERVATION, "kind"), *lines]
    if pool:
        body.append(category(POOL + pool, "mixin"))
    return client.post_text("/ipreservation/", body)


def reserved(client: Client, *lines: str, pool: str | None = "public") -> str:
    response = reserve(client, *lines, pool=pool)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.headers["Location"].removeprefix("http://localhost")


def public_network(client: Client) -> str:
    return client.create(NETWORK, 'X-OCCI-Attribute: occi.network.address="10.80.0.0/24"',
                         'X-OCCI-Attribute: occi.network.gateway="10.80.0.1"',
                         mixins=(IPNETWORK, PUBLIC))


def public_compute(client: Client, network: str) -> str:
    """A compute with an interface on `network`."""
    compute = client.compute()
    client.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                  f'X-OCCI-Attribute: occi.core.target="{network}"')
    return compute


def lead(client: Client, compute: str, reservation: str):
    return client.post_text("/link/networkinterface/", [
        category(NETWORKINTERFACE, "kind"), f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{reservation}"'])


def published(client: Client) -> dict:
    objects = client.app.extensions["occi.service"].backends.network.publications
    return {key: objects.get(key) for key in objects.names()}


def test_pools_and_the_kind_are_in_the_query_interface(make_app) -> None:
    model = reserving(make_app).json("/-/")
    kind = next(k for k in model["kinds"] if k["term"] == "ipreservation")
    assert kind["location"] == "/ipreservation/"
    pools = {m["term"]: m for m in model["mixins"] if m["scheme"] == POOL}
    assert set(pools) == set(POOLS)
    assert pools["lab"]["depends"] == ["http://schemas.ogf.org/occi/infrastructure#floatingippool"]


def test_an_address_is_reserved_from_its_pool_and_kept(make_app) -> None:
    client = reserving(make_app)
    first, second = reserved(client), reserved(client, pool="lab")
    assert client.attributes(first)["occi.ipreservation.address"] == "192.0.2.129"
    assert client.attributes(first)["occi.ipreservation.used"] is False
    assert client.attributes(second)["occi.ipreservation.address"] == "198.51.100.1"
    chosen = reserved(client, 'X-OCCI-Attribute: occi.ipreservation.address="192.0.2.140"')
    assert client.attributes(chosen)["occi.ipreservation.address"] == "192.0.2.140"
    for lines, status, message in (
            (['X-OCCI-Attribute: occi.ipreservation.address="192.0.2.140"'], 409,
             "reserved already"),
            (['X-OCCI-Attribute: occi.ipreservation.address="192.0.2.200"'], 400,
             "not in the pool public")):
        response = reserve(client, *lines)
        assert response.status_code == status and message in response.get_data(as_text=True)
    assert reserve(client, pool=None).status_code == 400  # two pools: name one
    reserved(client, pool="lab")
    assert reserve(client, pool="lab").status_code == 409  # a /30 holds two
    changed = client.post_text(first, [
        category(IPRESERVATION, "kind"),
        'X-OCCI-Attribute: occi.ipreservation.address="192.0.2.131"'])
    assert changed.status_code == 400
    assert client.request("DELETE", first).status_code == 200
    assert client.attributes(reserved(client))["occi.ipreservation.address"] == "192.0.2.129"


def test_a_site_without_pools_has_none_to_give(client: Client) -> None:
    response = reserve(client, pool=None)
    assert response.status_code == 409
    assert "no floating IP pool" in response.get_data(as_text=True)


def test_fifty_parallel_reservations_hold_fifty_different_addresses(make_app) -> None:
    client = reserving(make_app, pools={"public": "192.0.2.0/25"},
                       quotas={"default": {"public_ips": -1}})
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: reserve(client), range(50)))
    assert [r.status_code for r in responses] == [201] * 50
    addresses = [client.attributes(r.headers["Location"].removeprefix("http://localhost"))[
        "occi.ipreservation.address"] for r in responses]
    assert len(set(addresses)) == 50


def test_the_quota_counts_reservations(make_app) -> None:
    client = reserving(make_app, quotas={"default": {"public_ips": 2}})
    reserved(client), reserved(client)
    refused = reserve(client)
    assert refused.status_code == 403 and "public_ips" in refused.get_data(as_text=True)
    usage = client.json("/quota/default")["attributes"]
    assert usage["occi_server.quota.public_ips.usage"] == 2


def test_an_address_leads_to_one_compute_at_a_time_and_moves(make_app) -> None:
    client = reserving(make_app)
    address, network = reserved(client), public_network(client)
    first = public_compute(client, network)
    link = lead(client, first, address)
    assert link.status_code == 201, link.get_data(as_text=True)
    link_path = link.headers["Location"].removeprefix("http://localhost")
    assert client.attributes(address)["occi.ipreservation.used"] is True
    assert client.attributes(link_path)["occi.networkinterface.address"] == "192.0.2.129"
    [(key, record)] = published(client).items()
    assert record["public"] == "192.0.2.129" and record["private"] == "10.80.0.2"
    second = public_compute(client, network)
    taken = lead(client, second, address)
    assert taken.status_code == 409 and link_path in taken.get_data(as_text=True)
    assert client.request("DELETE", address).status_code == 409  # in use
    assert client.request("DELETE", link_path).status_code == 200
    assert published(client) == {}
    assert client.attributes(address)["occi.ipreservation.used"] is False
    assert lead(client, second, address).status_code == 201
    assert published(client)[key]["private"] == "10.80.0.3"
    assert client.request("DELETE", second).status_code == 200  # its links go with it
    assert published(client) == {}
    assert client.attributes(address)["occi.ipreservation.address"] == "192.0.2.129"


def test_an_address_never_stays_with_an_interface_that_went(make_app) -> None:
    """Its private address may go to another guest next: the reservation follows
    the compute's next public interface, or leads nowhere."""
    client = reserving(make_app)
    address, network = reserved(client), public_network(client)
    compute = public_compute(client, network)
    second = client.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                           f'X-OCCI-Attribute: occi.core.target="{network}"')
    assert lead(client, compute, address).status_code == 201
    [(key, record)] = published(client).items()
    first = next(link["id"] for link in client.json(compute)["links"]
                 if link["target"]["location"] == network)
    assert record["private"] == "10.80.0.2"
    assert client.request("DELETE", f"/link/networkinterface/{first}").status_code == 200
    assert published(client)[key]["private"] == "10.80.0.3"  # the second interface's
    assert client.request("DELETE", second).status_code == 200
    assert published(client) == {}


def test_only_a_compute_on_a_public_network_can_be_reached(make_app) -> None:
    client = reserving(make_app)
    address, compute = reserved(client), client.compute()
    refused = lead(client, compute, address)
    assert refused.status_code == 409
    assert "no interface on a public network" in refused.get_data(as_text=True)
