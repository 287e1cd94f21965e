"""Per-tenant quotas: enforced before anything is stored or changed, refused
with which quota and by how much, and readable (the quota kind and JSON)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask

from occi_server.service.quotas import QuotaCheck
from tests.conftest import COMPUTE, CRTP, NETWORK, NETWORKINTERFACE, Client, category
from tests.support.tenants import client_of, site_users

PUBLIC = "http://schemas.occi-server.org/occi/infrastructure/network#public"
IPNETWORK = "http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"
QUOTA_KIND = 'Category: quota; scheme="http://schemas.occi-server.org/occi/infrastructure#"'


@pytest.fixture
def app(make_app) -> Flask:
    return make_app(auth="basic", users=site_users(), network_uplink="lo", quotas={
        "default": {"instances": 2, "cores": 3, "memory": 8, "storage": 5, "volumes": 3,
                    "networks": 2, "public_ips": 1},
        "tenant-b": {"instances": 10, "cores": -1}})


def test_creates_beyond_a_quota_are_refused_with_the_quota_and_the_excess(app: Flask) -> None:
    alice = client_of(app, "alice")
    first = alice.compute()
    alice.compute()
    refused = alice.post_text("/compute/", [category(COMPUTE, "kind")])
    assert refused.status_code == 403
    assert "quota instances of tenant tenant-a exceeded: this would make 3 compute " \
           "resources, the limit is 2 (1 over)" in refused.get_data(as_text=True)
    assert alice.get("/compute/").get_data(as_text=True).count("/compute/") == 2
    assert alice.request("DELETE", first).status_code == 200
    alice.compute()  # room again


def test_without_configured_quotas_every_tenant_has_the_built_in_ones(make_app) -> None:
    from occi_server.kinds.tenancy import BUILTIN_LIMITS
    from tests.conftest import Client

    client = Client(make_app())
    created = client.post_json("/compute/", {"resources": [
        {"kind": COMPUTE} for _ in range(BUILTIN_LIMITS["instances"])]})
    assert created.status_code == 201
    refused = client.post_text("/compute/", [category(COMPUTE, "kind")])
    assert refused.status_code == 403 and "quota instances" in refused.get_data(as_text=True)
    lifted = Client(make_app(quotas={"default": {"instances": -1}}))
    assert lifted.post_text("/compute/", [category(COMPUTE, "kind")]).status_code == 201


def test_a_resize_beyond_a_quota_is_refused_and_changes_nothing(app: Flask) -> None:
    alice = client_of(app, "alice")
    compute = alice.compute()  # small: 1 core
    alice.post_text(compute + "?action=stop", [
        'Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#"; '
        'class="action"'])
    refused = alice.post_text(compute, [category(COMPUTE, "kind"),
                                        "X-OCCI-Attribute: occi.compute.cores=4"])
    assert refused.status_code == 403
    assert "quota cores of tenant tenant-a exceeded: this would make 4 CPU cores" in \
        refused.get_data(as_text=True)
    assert alice.attributes(compute)["occi.compute.cores"] == 1
    large = alice.post_text("/compute/", [category(COMPUTE, "kind"),
                                          category(CRTP + "large", "mixin")])
    assert large.status_code == 403  # 4 cores in all


def test_storage_networks_and_public_addresses_are_bounded(app: Flask) -> None:
    alice, root = client_of(app, "alice"), client_of(app, "root")
    alice.storage(4)
    refused = alice.post_text("/storage/", [
        'Category: storage; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
        'class="kind"', "X-OCCI-Attribute: occi.storage.size=2"])
    assert refused.status_code == 403
    assert "quota storage of tenant tenant-a exceeded: this would make 6 GiB" in \
        refused.get_data(as_text=True)
    public = alice.create(NETWORK, 'X-OCCI-Attribute: occi.network.address="10.60.0.0/24"',
                          mixins=(IPNETWORK, PUBLIC))
    compute = alice.compute()
    alice.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                 f'X-OCCI-Attribute: occi.core.target="{public}"')
    second = alice.post_text("/link/networkinterface/", [
        category(NETWORKINTERFACE, "kind"), f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{public}"'])
    assert second.status_code == 403
    assert "quota public_ips" in second.get_data(as_text=True)
    alice.network("10.61.0.0/24", None)
    third = alice.post_text("/network/", [category(NETWORK, "kind")])
    assert third.status_code == 403 and "quota networks" in third.get_data(as_text=True)
    # An operator acting for the tenant is bound by its quotas too.
    root.http.environ_base["HTTP_X_TENANT"] = "tenant-a"
    assert root.post_text("/network/", [category(NETWORK, "kind")]).status_code == 403


def test_public_addresses_a_create_links_are_counted_with_it(app: Flask) -> None:
    """A compute whose request also links it to a public network: the address
    counts against the quota as a separate interface's would (read once it
    grows), and a refusal leaves nothing of the request stored."""
    alice = client_of(app, "alice")
    public = alice.create(NETWORK, 'X-OCCI-Attribute: occi.network.address="10.62.0.0/24"',
                          mixins=(IPNETWORK, PUBLIC))
    link = f'Link: <{public}>; rel="{NETWORK}"; category="{NETWORKINTERFACE}"'
    twice = alice.post_text("/compute/", [category(COMPUTE, "kind"), link, link])
    assert twice.status_code == 403
    assert "quota public_ips of tenant tenant-a exceeded: this would make 2" in \
        twice.get_data(as_text=True)
    assert alice.get("/compute/").get_data() == b""
    first = alice.compute(link)
    assert alice.get(first).get_data(as_text=True).count(NETWORKINTERFACE) == 1
    again = alice.post_text("/compute/", [category(COMPUTE, "kind"), link])
    assert again.status_code == 403 and "quota public_ips" in again.get_data(as_text=True)
    assert alice.get("/compute/").get_data(as_text=True).split() == [
        "X-OCCI-Location:", f"http://localhost{first}"]


def test_tenants_have_their_own_limits(app: Flask) -> None:
    bob = client_of(app, "bob")
    for _ in range(3):
        bob.compute()  # instances 10; cores unlimited for tenant-b
    limits = bob.get("/api/quota").get_json()
    assert limits["tenant"] == "tenant-b"
    assert limits["quotas"]["instances"]["limit"] == 10
    assert limits["quotas"]["cores"] == {"limit": None, "usage": 3.0,
                                         "counts": "CPU cores of compute resources"}
    assert limits["quotas"]["memory"]["limit"] == 8


def test_quotas_are_an_occi_kind_the_tenant_can_read(app: Flask) -> None:
    alice = client_of(app, "alice")
    alice.compute()
    assert QUOTA_KIND in alice.get("/-/").get_data(as_text=True)
    listed = alice.get("/quota/", accept="text/uri-list").get_data(as_text=True)
    assert listed.split() == ["http://localhost/quota/tenant-a"]
    quota = alice.json("/quota/tenant-a")
    assert quota["kind"] == "http://schemas.occi-server.org/occi/infrastructure#quota"
    assert quota["attributes"]["occi_server.quota.instances.limit"] == 2
    assert quota["attributes"]["occi_server.quota.instances.usage"] == 1
    text = alice.get("/quota/tenant-a").get_data(as_text=True)
    assert 'X-OCCI-Attribute: occi_server.quota.cores.usage=1' in text
    for method in ("POST", "PUT", "DELETE"):
        response = alice.request(method, "/quota/tenant-a", data="",
                                 headers={"Content-Type": "text/plain"})
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET, HEAD"
    operator = client_of(app, "root").get("/quota/", accept="text/uri-list")
    assert {"http://localhost/quota/tenant-a", "http://localhost/quota/tenant-b"} <= \
        set(operator.get_data(as_text=True).split())


def test_a_create_checked_before_another_committed_is_checked_again(
        make_app, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two front ends on one store, one compute left under the quota: the first
    create is checked and stopped before it commits while the second is made
    (PostgreSQL lets both run; SQLite makes the second wait for the first).
    Exactly one of them is made, whichever commits first."""
    quotas = {"default": {"instances": 2}}
    first = client_of(make_app(auth="basic", users=site_users(), quotas=quotas,
                               database_url=database_url), "alice")
    second = client_of(make_app(auth="basic", users=site_users(), quotas=quotas,
                                database_url=database_url), "alice")
    first.compute()
    checked, go = threading.Event(), threading.Event()
    admit = QuotaCheck.admit

    def admit_then_wait(check: QuotaCheck, *args: Any, **kwargs: Any) -> None:
        admit(check, *args, **kwargs)
        if threading.current_thread().name == "held":
            checked.set()
            assert go.wait(30)

    monkeypatch.setattr(QuotaCheck, "admit", admit_then_wait)
    statuses: dict[str, int] = {}

    def create(name: str, client: Client) -> None:
        statuses[name] = client.post_text("/compute/", [category(COMPUTE, "kind")]).status_code

    held = threading.Thread(target=create, args=("held", first), name="held")
    held.start()
    assert checked.wait(30)
    racing = threading.Thread(target=create, args=("racing", second))
    racing.start()
    racing.join(2)  # done on PostgreSQL; on SQLite waiting for the held one's turn
    go.set()
    held.join(30)
    racing.join(30)
    assert sorted(statuses.values()) == [201, 403], statuses
    assert first.get("/compute/").get_data(as_text=True).count("/compute/") == 2
    assert first.json("/api/quota")["quotas"]["instances"]["usage"] == 2
