"""Availability zones (rOCCI-server 2's availability_zone mixins): one mixin per
zone of the compute backend, listed in /-/; a compute created with one is
placed there (the simulated backend records where; the libvirt hosts test
checks real placement); a compute is in one zone, given at creation only."""

from __future__ import annotations

import pytest

from occi_server.config import ConfigError
from tests.conftest import SITE, Client, category

PARENT = "http://schemas.ogf.org/occi/infrastructure#availability_zone"
ZONE = f"{SITE}availability_zone#"
HOSTS = ["qemu+ssh://root@hv1/system", "qemu+ssh://root@hv2/system"]


def zoned(make_app) -> Client:
    return Client(make_app(libvirt_hosts=HOSTS, availability_zones={
        "north": HOSTS[:1], "south": HOSTS[1:]}))


def placed_in(client: Client, path: str) -> str:
    compute = client.app.extensions["occi.service"].backends.compute
    return compute.objects.get(client.key(path))["zone"]


def test_the_query_interface_lists_the_zones(make_app, client: Client) -> None:
    mixins = {m["scheme"] + m["term"]: m for m in zoned(make_app).json("/-/")["mixins"]}
    assert PARENT in mixins
    assert {ZONE + "north", ZONE + "south"} <= set(mixins)
    assert mixins[ZONE + "north"]["depends"] == [PARENT]
    assert mixins[ZONE + "south"]["location"] == "/mixin/availability_zone/south/"
    default = {m["scheme"] + m["term"] for m in client.json("/-/")["mixins"]}
    assert ZONE + "default" in default  # a site naming no zones has one


def test_a_compute_is_placed_in_its_zone(make_app) -> None:
    client = zoned(make_app)
    south = client.compute(mixins=(ZONE + "south",))
    assert placed_in(client, south) == "south"
    assert ZONE + "south" in client.json(south)["mixins"]
    collection = client.get("/mixin/availability_zone/south/", accept="text/uri-list")
    assert collection.get_data(as_text=True).split() == [f"http://localhost{south}"]


def test_one_zone_given_at_creation(make_app) -> None:
    client = zoned(make_app)
    both = client.create_response("http://schemas.ogf.org/occi/infrastructure#compute",
                                  mixins=(ZONE + "north", ZONE + "south"))
    assert both.status_code == 400
    assert "one availability zone" in both.get_data(as_text=True)
    compute = client.compute()
    added = client.post_text(compute, [category(ZONE + "north", "mixin")])
    assert added.status_code == 400 and "only be given when" in added.get_data(as_text=True)


def test_zones_must_name_configured_hosts(make_app) -> None:
    with pytest.raises(ConfigError, match="must list hosts of libvirt_hosts"):
        make_app(libvirt_hosts=HOSTS, availability_zones={"east": ["qemu:///other"]})
    with pytest.raises(ConfigError, match="not a zone name"):
        make_app(libvirt_hosts=HOSTS, availability_zones={"../x": HOSTS})
