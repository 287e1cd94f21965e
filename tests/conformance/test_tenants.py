"""Tenants are kept apart: for every route and verb, a user of tenant A acting
on tenant B's entities gets 404 (never 403, never success) and B's state does
not change. Operators see everything; shared entities are explicit."""

from __future__ import annotations

import pytest
from flask import Flask

from occi_server.images import Image
from occi_server.service.imagemixins import image_mixin
from occi_server.store import Scope
from tests.conftest import (
    COMPUTE,
    IPNETWORK,
    NETWORK,
    NETWORKINTERFACE,
    STORAGE,
    STORAGELINK,
    Client,
    category,
)
from tests.support.tenants import client_of, site_users

SHARED = "http://schemas.occi-server.org/occi/infrastructure#shared"
TAG = 'Category: bobs; scheme="http://example.org/bob#"; class="mixin"; location="/mixin/bobs/"'
ACTIONS = {"compute": "stop", "storage": "offline", "network": "down",
           "networkinterface": None, "storagelink": None}


@pytest.fixture
def app(make_app) -> Flask:
    return make_app(auth="basic", users=site_users())


@pytest.fixture
def bob_world(app: Flask) -> dict[str, str]:
    """Everything tenant B can own: resources, links, a tag and a job."""
    bob = client_of(app, "bob")
    network = bob.network("10.20.0.0/24", "10.20.0.1")
    compute = bob.compute()
    storage = bob.storage(2)
    interface = bob.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                           f'X-OCCI-Attribute: occi.core.target="{network}"')
    link = bob.create(STORAGELINK, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                      f'X-OCCI-Attribute: occi.core.target="{storage}"')
    assert bob.post_text("/-/", [TAG]).status_code == 200
    assert bob.post_text("/mixin/bobs/", [f"X-OCCI-Location: {compute}"]).status_code == 200
    return {"compute": compute, "storage": storage, "network": network,
            "networkinterface": interface, "storagelink": link}


def state_of(client: Client, world: dict[str, str]) -> dict[str, object]:
    """What B sees: each entity's full rendering, the listings, the tag, the jobs."""
    seen: dict[str, object] = {path: client.json(path) for path in world.values()}
    for listing in ("/compute/", "/storage/", "/network/", "/link/", "/mixin/bobs/"):
        seen[listing] = sorted(client.get(listing).get_data(as_text=True).split())
    seen["jobs"] = client.get("/jobs/").get_json()
    return seen


def bodies(kind: str, path: str) -> list[tuple[str, str, str]]:
    """(method, query, text/plain body) of every request that acts on one entity."""
    kind_id = {"compute": COMPUTE, "storage": STORAGE, "network": NETWORK,
               "networkinterface": NETWORKINTERFACE, "storagelink": STORAGELINK}[kind]
    rendering = "\n".join([category(kind_id, "kind"),
                           'X-OCCI-Attribute: occi.core.title="taken over"']) + "\n"
    requests = [("GET", "", ""), ("HEAD", "", ""), ("DELETE", "", ""), ("OPTIONS", "", ""),
                ("POST", "", rendering), ("PUT", "", rendering)]
    if ACTIONS[kind]:
        action = f"http://schemas.ogf.org/occi/infrastructure/{kind}/action#{ACTIONS[kind]}"
        scheme, _, term = action.partition("#")
        requests.append(("POST", f"?action={ACTIONS[kind]}",
                         f'Category: {term}; scheme="{scheme}#"; class="action"\n'))
    return requests


def test_another_tenants_entities_are_404_for_every_verb(app: Flask,
                                                         bob_world: dict[str, str]) -> None:
    bob, alice = client_of(app, "bob"), client_of(app, "alice")
    before = state_of(bob, bob_world)
    tried = 0
    for kind, path in bob_world.items():
        for target in (path, path + "/console") if kind == "compute" else (path,):
            for method, query, body in bodies(kind, target):
                response = alice.request(method, target + query, data=body,
                                         headers={"Content-Type": "text/plain",
                                                  "Accept": "text/plain"})
                assert response.status_code == 404, (method, target, query,
                                                     response.get_data(as_text=True))
                tried += 1
    assert tried >= 40
    assert state_of(bob, bob_world) == before


def test_collections_hold_only_the_tenants_own(app: Flask, bob_world: dict[str, str]) -> None:
    bob, alice = client_of(app, "bob"), client_of(app, "alice")
    before = state_of(bob, bob_world)
    mine = alice.compute()
    for listing in ("/", "/compute/", "/storage/", "/network/", "/link/", "/resource/",
                    "/link/networkinterface/", "/link/storagelink/"):
        for accept in ("text/plain", "text/uri-list", "application/occi+json"):
            text = alice.get(listing, accept=accept).get_data(as_text=True)
            assert not any(path in text for path in bob_world.values()), (listing, accept)
    # Actions and deletes on whole collections touch only the caller's own.
    stop = 'Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#"' \
           '; class="action"'
    assert alice.post_text("/compute/?action=stop", [stop]).status_code == 200
    assert alice.attributes(mine)["occi.compute.state"] == "inactive"
    for collection in ("/link/", "/compute/", "/storage/", "/network/"):
        assert alice.request("DELETE", collection).status_code == 200
    assert alice.get(mine).status_code == 404
    assert state_of(bob, bob_world) == before


def test_another_tenants_mixins_jobs_and_quotas_are_not_found(
        app: Flask, bob_world: dict[str, str]) -> None:
    bob, alice = client_of(app, "bob"), client_of(app, "alice")
    before = state_of(bob, bob_world)
    assert "bobs" not in alice.get("/-/").get_data(as_text=True)
    assert alice.get("/mixin/bobs/").status_code == 404
    assert alice.post_text("/mixin/bobs/", [f"X-OCCI-Location: {alice.compute()}"]
                           ).status_code == 404
    assert alice.request("DELETE", "/mixin/bobs/").status_code == 404
    assert alice.request("DELETE", "/-/?category=http://example.org/bob%23bobs"
                         ).status_code in (400, 404)
    bobs_jobs = bob.get("/jobs/").get_json()["jobs"]
    assert bobs_jobs
    for job in bobs_jobs:
        assert alice.get(f"/jobs/{job['id']}").status_code == 404
    assert not {job["location"] for job in alice.get("/jobs/").get_json()["jobs"]} \
        & set(bob_world.values())
    assert alice.get("/quota/tenant-b").status_code == 404
    assert alice.get("/api/quota?tenant=tenant-b").status_code == 404
    assert alice.get("/quota/tenant-a").status_code == 200
    assert state_of(bob, bob_world) == before


def test_another_tenants_entities_cannot_be_linked_or_tagged(
        app: Flask, bob_world: dict[str, str]) -> None:
    bob, alice = client_of(app, "bob"), client_of(app, "alice")
    before = state_of(bob, bob_world)
    mine = alice.compute()
    for kind, source, target in ((STORAGELINK, mine, bob_world["storage"]),
                                 (NETWORKINTERFACE, mine, bob_world["network"]),
                                 (STORAGELINK, bob_world["compute"], alice.storage())):
        response = alice.post_text("/link/", [
            category(kind, "kind"), f'X-OCCI-Attribute: occi.core.source="{source}"',
            f'X-OCCI-Attribute: occi.core.target="{target}"'])
        assert response.status_code == 400
        assert "does not exist" in response.get_data(as_text=True)
    assert alice.post_text("/-/", ['Category: mine; scheme="http://example.org/a#"; '
                                   'class="mixin"; location="/mixin/mine/"']).status_code == 200
    tagged = alice.post_text("/mixin/mine/", [f"X-OCCI-Location: {bob_world['compute']}"])
    assert tagged.status_code == 400
    # A client-chosen id that another tenant holds is refused without saying more.
    taken = bob_world["compute"].rpartition("/")[2]
    assert alice.post_text("/compute/", [category(COMPUTE, "kind"),
                                         f'X-OCCI-Attribute: occi.core.id="{taken}"']
                           ).status_code == 409
    assert state_of(bob, bob_world) == before


def test_operators_see_and_act_on_every_tenants_entities(
        app: Flask, bob_world: dict[str, str]) -> None:
    root = client_of(app, "root")
    listed = root.get("/compute/").get_data(as_text=True)
    assert bob_world["compute"] in listed
    assert root.get("/quota/tenant-b").status_code == 200
    assert root.request("DELETE", bob_world["storagelink"]).status_code == 200
    assert client_of(app, "bob").get(bob_world["storagelink"]).status_code == 404


def test_shared_entities_are_visible_and_linkable_but_only_the_owner_changes_them(
        app: Flask) -> None:
    root, alice, bob = (client_of(app, u) for u in ("root", "alice", "bob"))
    lines = ['X-OCCI-Attribute: occi.network.address="10.50.0.0/24"']
    shared = root.create(NETWORK, *lines, mixins=(IPNETWORK, SHARED))
    for user in (alice, bob):
        assert shared in user.get("/network/").get_data(as_text=True)
        compute = user.compute()
        user.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                    f'X-OCCI-Attribute: occi.core.target="{shared}"')
    assert alice.request("DELETE", shared).status_code == 403
    renamed = alice.post_text(shared, [category(NETWORK, "kind"),
                                       'X-OCCI-Attribute: occi.core.title="mine now"'])
    assert renamed.status_code == 403
    assert alice.attributes(shared).get("occi.core.title") != "mine now"
    # Each tenant sees its own interfaces on the shared network, not the other's.
    assert alice.get("/link/networkinterface/").get_data(as_text=True).count("/link/") == 1
    # Only operators share.
    refused = alice.post_text("/network/", [category(NETWORK, "kind"), category(SHARED, "mixin")])
    assert refused.status_code == 403
    own = alice.create(NETWORK)
    assert alice.post_text("/mixin/shared/", [f"X-OCCI-Location: {own}"]).status_code == 403
    assert shared not in alice.get(own).get_data(as_text=True)
    # Acting on a whole collection acts on the caller's own, not on what is shared.
    down = 'Category: down; scheme="http://schemas.ogf.org/occi/infrastructure/network/' \
           'action#"; class="action"'
    assert alice.post_text("/network/?action=down", [down]).status_code == 200
    assert alice.attributes(own)["occi.network.state"] == "inactive"
    assert alice.attributes(shared)["occi.network.state"] == "active"
    assert alice.request("DELETE", "/link/").status_code == 200
    assert alice.request("DELETE", "/network/").status_code == 200
    assert alice.get(own).status_code == 404
    assert alice.get(shared).status_code == 200
    assert alice.request("DELETE", "/mixin/ipnetwork/").status_code in (200, 400)
    assert IPNETWORK in alice.json(shared)["mixins"]


def test_a_user_of_several_tenants_chooses_one_per_request(make_app) -> None:
    users = site_users()
    users["alice"]["tenants"] = ["tenant-a", "tenant-c"]
    app = make_app(auth="basic", users=users)
    alice = client_of(app, "alice")
    in_a = alice.compute()
    alice.http.environ_base["HTTP_X_TENANT"] = "tenant-c"
    assert alice.get(in_a).status_code == 404
    assert alice.get("/api/whoami").get_json()["tenant"] == "tenant-c"
    alice.http.environ_base["HTTP_X_TENANT"] = "tenant-b"
    refused = alice.get("/compute/")
    assert refused.status_code == 403
    assert "may not act for tenant tenant-b" in refused.get_data(as_text=True)


def test_a_saved_image_is_its_tenants_own(app: Flask) -> None:
    alice, bob = client_of(app, "alice"), client_of(app, "bob")
    save = 'Category: save; scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#"' \
           '; class="action"'
    answer = alice.post_text(alice.compute() + "?action=save", [save])
    assert answer.status_code == 200
    term = answer.get_data(as_text=True).split(";")[0].split()[-1]
    os_tpl = f"http://occi.test/occi/os_tpl#{term}"
    assert term in alice.get("/-/").get_data(as_text=True)
    alice.compute(mixins=(os_tpl,))
    assert term not in bob.get("/-/").get_data(as_text=True)
    refused = bob.post_text("/compute/", [category(COMPUTE, "kind"), category(os_tpl, "mixin")])
    assert refused.status_code == 400
    assert bob.get(f"/mixin/os_tpl/{term}/").status_code == 404


def test_a_saved_image_in_the_catalogue_is_offered_to_its_tenant_only(make_app) -> None:
    """As with libvirt, whose saves land in the image catalogue."""
    images = [{"term": "debian-12", "title": "Debian", "size_gib": 1.0},
              {"term": "golden", "title": "Saved by alice", "size_gib": 1.0}]
    app = make_app(auth="basic", users=site_users(), simulated_images=images)
    with app.extensions["occi.store"].transaction(
            write=True, scope=Scope("tenant-a", "alice")) as repo:
        repo.insert_mixin(image_mixin("http://occi.test/occi/", Image("golden", "Saved")))
    alice, bob, root = (client_of(app, u) for u in ("alice", "bob", "root"))
    assert alice.get("/mixin/os_tpl/golden/").status_code == 200
    assert alice.get("/mixin/image_tpl/golden/").status_code == 200
    assert bob.get("/mixin/os_tpl/golden/").status_code == 404
    assert bob.get("/mixin/image_tpl/golden/").status_code == 404
    assert "golden" not in bob.get("/-/").get_data(as_text=True)
    assert bob.get("/mixin/os_tpl/debian-12/").status_code == 200
    assert root.get("/mixin/os_tpl/golden/").status_code == 200


def test_refusals_name_nothing_of_another_tenant(app: Flask, bob_world: dict[str, str]) -> None:
    alice = client_of(app, "alice")
    overlap = alice.post_text("/network/", [category(NETWORK, "kind"), category(IPNETWORK, "mixin"),
                                            'X-OCCI-Attribute: occi.network.address="0.0.0.0/1"'])
    said = overlap.get_data(as_text=True)
    assert overlap.status_code == 409 and "overlaps a network of this site" in said
    assert bob_world["network"] not in said and "10.20.0" not in said
    tag = alice.post_text("/-/", [TAG])  # bob's tag's name and location
    said = tag.get_data(as_text=True)
    assert tag.status_code == 409 and "UNIQUE" not in said and "categories" not in said
    mine = alice.network("10.30.0.0/24", "10.30.0.1")
    compute = alice.compute()
    bobs_mac = client_of(app, "bob").json(bob_world["networkinterface"])["attributes"][
        "occi.networkinterface.mac"]
    taken = alice.create_response(NETWORKINTERFACE,
                                  f'X-OCCI-Attribute: occi.core.source="{compute}"',
                                  f'X-OCCI-Attribute: occi.core.target="{mine}"',
                                  f'X-OCCI-Attribute: occi.networkinterface.mac="{bobs_mac}"')
    assert taken.status_code == 409 and "in use" not in taken.get_data(as_text=True)


def test_values_with_a_trailing_newline_are_refused(app: Flask) -> None:
    client = client_of(app, "alice")
    network = client.network("10.31.0.0/24", "10.31.0.1")
    compute = client.compute()
    for attribute in ('occi.networkinterface.mac="52:54:00:aa:bb:cc\\n"',):
        refused = client.create_response(NETWORKINTERFACE,
                                         f'X-OCCI-Attribute: occi.core.source="{compute}"',
                                         f'X-OCCI-Attribute: occi.core.target="{network}"',
                                         f"X-OCCI-Attribute: {attribute}")
        assert refused.status_code == 400, refused.get_data(as_text=True)
    hostname = client.post_text("/compute/", [category(COMPUTE, "kind"),
                                              'X-OCCI-Attribute: occi.compute.hostname="vm1\\n"'])
    assert hostname.status_code == 400
