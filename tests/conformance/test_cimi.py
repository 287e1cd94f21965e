"""The DMTF CIMI interface (DSP0263 2.0) over the same service as OCCI: one
machine is one compute whichever protocol made it or changed it; collection
queries; JSON and XML; errors as CIMI answers them; tenancy and quotas as in
OCCI. The simulated backend here; a real libvirt guest in
tests/integration/test_cimi_guest.py, SixSq's client in tests/client."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from flask import Flask

from tests.conftest import COMPUTE, COMPUTE_ACTION, CRTP, NETWORKINTERFACE, SITE, Client
from tests.support.tenants import client_of, site_users

CIMI = "http://schemas.dmtf.org/cimi/2/"
NS = "{http://schemas.dmtf.org/cimi/2}"
DEBIAN = f"{SITE}os_tpl#debian-12"


def cimi(client: Client, method: str, path: str, body: Any = None,
         accept: str = "application/json", **headers: str):
    kwargs: dict[str, Any] = {"headers": {"Accept": accept, **headers}}
    if isinstance(body, bytes | str):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    return client.request(method, "/cimi/" + path.removeprefix("/cimi/"), **kwargs)


def ok(response, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["CIMI-Specification-Version"] == "2.0"
    return response.get_json()


def machine_create(name: str = "vm", config: Any = None, **template: Any) -> dict[str, Any]:
    return {"resourceURI": CIMI + "MachineCreate", "name": name,
            "machineTemplate": {"machineConfig": config or {"href": "machineConfig/small"},
                                "machineImage": {"href": "machineImage/debian-12"},
                                **template}}


def new_machine(client: Client, name: str = "vm", **template: Any) -> dict[str, Any]:
    response = cimi(client, "POST", "machines", machine_create(name, **template))
    created = ok(response, 201)
    assert response.headers["Location"] == "http://localhost/cimi/" + created["id"]
    return created


def occi_path(cimi_id: str) -> str:
    segment, _, member = cimi_id.partition("/")
    return {"machine": "/compute/", "volume": "/storage/", "network": "/network/",
            "address": "/ipreservation/"}[segment] + member


@pytest.fixture
def client(app: Flask) -> Client:
    return Client(app)


def test_the_entry_point_names_every_collection(client: Client) -> None:
    for path in ("", "cloudEntryPoint", "cloud-entry-point"):
        entry = ok(cimi(client, "GET", path))
        assert entry["resourceURI"] == CIMI + "CloudEntryPoint"
        assert entry["baseURI"] == "http://localhost/cimi/"
        types = {"machines": "Machine", "machineTemplates": "MachineTemplate",
                 "machineConfigs": "MachineConfiguration", "machineImages": "MachineImage",
                 "credentials": "Credential", "volumes": "Volume",
                 "volumeTemplates": "VolumeTemplate", "volumeConfigs": "VolumeConfiguration",
                 "networks": "Network", "networkConfigs": "NetworkConfiguration",
                 "addresses": "Address", "jobs": "Job", "resourceMetadata": "ResourceMetadata"}
        assert {name for name, value in entry.items() if isinstance(value, dict)} == set(types)
        creatable = {"machines", "machineTemplates", "machineImages", "credentials", "volumes",
                     "volumeTemplates", "volumeConfigs", "networks", "networkConfigs",
                     "addresses"}
        for name, type_name in types.items():
            listed = ok(cimi(client, "GET", entry[name]["href"]))
            assert listed["resourceURI"] == CIMI + type_name + "Collection"
            members = "resourceMetadatas" if name == "resourceMetadata" else name
            assert listed["count"] == len(listed.get(members, []))  # an empty one is left out
            assert ("operations" in listed) == (name in creatable)


def test_resource_metadata_says_what_is_offered_and_what_is_not(client: Client) -> None:
    machine = ok(cimi(client, "GET", "resourceMetadata/Machine"))
    assert machine["typeURI"] == CIMI + "Machine"
    assert [a["uri"] for a in machine["actions"]] == \
        [CIMI + "action/" + a for a in ("start", "stop", "restart", "suspend", "capture")]
    capabilities = {c["uri"]: c["value"] for c in machine["capabilities"]}
    assert capabilities[CIMI + "capability/Machine/MachineConfigByValue"] is True
    assert capabilities[CIMI + "capability/Machine/DefaultInitialState"] == "STARTED"
    entry = ok(cimi(client, "GET", "resourceMetadata/CloudEntryPoint"))
    assert "Systems" in entry["description"] and "pause" in entry["description"]
    assert {c["name"]: c["value"] for c in entry["capabilities"]}["FilterParameterQuery"]
    listed = ok(cimi(client, "GET", "resourceMetadata"))
    assert {m["name"] for m in listed["resourceMetadatas"]} >= {"Machine", "CloudEntryPoint"}
    document = ET.fromstring(cimi(client, "GET", "resourceMetadata/Machine?$format=xml").data)
    assert document.tag == NS + "ResourceMetadata"
    capability = document.find(f"{NS}capabilities/{NS}capability[@name='DefaultInitialState']")
    assert capability is not None and capability.text == "STARTED"
    assert document.find(f"{NS}actions/{NS}action[@name='stop']").attrib["method"] == "POST"


def test_configurations_and_images_are_the_sites_flavours_and_os_templates(
        client: Client) -> None:
    small = ok(cimi(client, "GET", "machineConfig/small"))
    assert (small["cpu"], small["memory"]) == (1, 1024 * 1024)  # KiB
    assert small["disks"] == [{"capacity": 10 * 1024 * 1024}]
    images = ok(cimi(client, "GET", "machineImages"))["machineImages"]
    occi_templates = {m["term"] for m in client.json("/-/")["mixins"]
                      if m.get("depends") == ["http://schemas.ogf.org/occi/infrastructure#os_tpl"]}
    assert {image["name"] for image in images} == occi_templates
    assert cimi(client, "GET", "machineImage/none").status_code == 404


def test_one_machine_seen_and_changed_through_both_protocols(client: Client) -> None:
    machine = new_machine(client, "both")
    assert (machine["state"], machine["cpu"], machine["memory"]) == ("STARTED", 1, 1048576)
    path = occi_path(machine["id"])
    attributes = client.attributes(path)
    assert attributes["occi.core.title"] == "both"
    assert attributes["occi.compute.state"] == "active"
    assert DEBIAN in client.json(path)["mixins"]

    # stopped through OCCI: CIMI says STOPPED and offers start
    stopped = client.post_text(f"{path}?action=stop",
                               [f'Category: stop; scheme="{COMPUTE_ACTION}"; class="action"'])
    assert stopped.status_code == 200
    seen = ok(cimi(client, "GET", machine["id"]))
    assert seen["state"] == "STOPPED"
    rels = {operation["rel"] for operation in seen["operations"]}
    assert CIMI + "action/start" in rels and CIMI + "action/stop" not in rels

    # started through CIMI (the Action form of the spec): OCCI says active
    start = {"resourceURI": CIMI + "Action", "action": CIMI + "action/start"}
    job = ok(cimi(client, "POST", machine["id"], start))
    assert job["resourceURI"] == CIMI + "Job" and job["state"] == "SUCCESS"
    assert job["action"] == CIMI + "action/start"
    assert job["targetResource"] == {"href": machine["id"]}
    assert client.attributes(path)["occi.compute.state"] == "active"

    # edited through CIMI, seen in OCCI; the reverse
    edited = ok(cimi(client, "PUT", machine["id"], {"name": "renamed", "cpu": 2}))
    assert (edited["name"], edited["cpu"]) == ("renamed", 2)
    assert edited["created"] == machine["created"] < edited["updated"]
    assert edited["created"].endswith("+00:00")
    assert client.attributes(path)["occi.compute.cores"] == 2
    client.post_text(path, [f'Category: compute; scheme="{COMPUTE.rpartition("#")[0]}#"; '
                            'class="kind"', 'X-OCCI-Attribute: occi.core.summary="web"'])
    assert ok(cimi(client, "GET", machine["id"]))["description"] == "web"

    # deleted through OCCI: gone in CIMI
    assert client.request("DELETE", path).status_code == 200
    assert cimi(client, "GET", machine["id"]).status_code == 404


def test_a_machine_created_through_occi_is_one_of_cimis(client: Client) -> None:
    path = client.compute('X-OCCI-Attribute: occi.core.title="from occi"',
                          mixins=(CRTP + "medium",))
    listed = ok(cimi(client, "GET", "machines"))["machines"]
    assert [(m["id"], m["name"], m["cpu"]) for m in listed] == \
        [("machine/" + path.rpartition("/")[2], "from occi", 2)]
    job = ok(cimi(client, "DELETE", listed[0]["id"]))
    assert (job["action"], job["state"]) == ("delete", "SUCCESS")
    assert client.get(path).status_code == 404


def test_every_operation_offered_is_one_that_works(client: Client) -> None:
    machine = new_machine(client)
    expected = {"STARTED": {"stop", "restart", "suspend", "capture"},
                "STOPPED": {"start", "capture"}, "SUSPENDED": {"start", "stop"}}
    for action, state in (("stop", "STOPPED"), ("start", "STARTED"), ("restart", "STARTED"),
                          ("suspend", "SUSPENDED"), ("start", "STARTED"),
                          ("capture", "STARTED")):
        seen = ok(cimi(client, "GET", machine["id"]))
        offered = {o["rel"]: o["href"] for o in seen["operations"]}
        assert {rel.removeprefix(CIMI + "action/") for rel in offered
                if rel.startswith(CIMI)} == expected[seen["state"]]
        href = offered[CIMI + "action/" + action]
        if action == "capture":  # a MachineImage added to the collection, made from the machine
            assert href == "machineImages"
            response = cimi(client, "POST", href, {
                "resourceURI": CIMI + "MachineImage", "description": "captured",
                "type": "IMAGE", "imageLocation": {"href": machine["id"]}})
            image = ok(response, 201)
            assert response.headers["Location"] == "http://localhost/cimi/" + image["id"]
            assert ok(cimi(client, "GET", image["id"]))["description"] == "captured"
        else:
            job = ok(cimi(client, "POST", href, {"resourceURI": CIMI + "Action",
                                                 "action": CIMI + "action/" + action}))
            assert job["state"] == "SUCCESS"
        assert ok(cimi(client, "GET", machine["id"]))["state"] == state
    images = ok(cimi(client, "GET", "machineImages?$filter=description='captured'"))
    assert images["count"] == 1
    again = ok(cimi(client, "POST", machine["id"] + "/action/capture"))  # the action's form
    assert again["action"] == CIMI + "action/capture"
    assert ok(cimi(client, "GET", "machineImages"))["count"] == 4


def test_an_action_not_possible_now_is_a_conflict(client: Client) -> None:
    machine = new_machine(client)
    refused = cimi(client, "POST", machine["id"] + "/action/start")
    body = refused.get_json()
    assert refused.status_code == 409 and "start is not possible" in body["message"]
    assert body["status"] == 409
    assert cimi(client, "POST", machine["id"],
                {"resourceURI": CIMI + "Action", "action": CIMI + "action/fly"}
                ).status_code == 400


def test_collection_queries(client: Client) -> None:
    for name, config in (("a", "small"), ("b", "medium"), ("c", "large"), ("d", "medium")):
        new_machine(client, name, config={"href": f"machineConfig/{config}"})

    def names(query: str) -> list[str]:
        listed = ok(cimi(client, "GET", "machines?" + query))
        return [m.get("name") for m in listed.get("machines", [])]
    assert names("$filter=cpu=2&$orderby=name:desc") == ["d", "b"]
    assert names("$filter=cpu>=2 and name!='d'&$orderby=cpu:desc,name") == ["c", "b"]
    assert names("$filter=name='a' or (cpu=4 and state='STARTED')&$orderby=name") == ["a", "c"]
    assert names("$filter=2=cpu&$filter=name<'c'") == ["b"]  # several filters all hold
    assert names("$orderby=name&$first=2&$last=3") == ["b", "c"]
    assert names("$orderby=created:desc") == ["d", "c", "b", "a"]
    assert names(f"$filter=created<{time.strftime('%Y')}-01-01") == []
    assert names("$orderby=name&$last=0") == []
    counted = ok(cimi(client, "GET", "machines?$orderby=name&$first=4"))
    assert counted["count"] == 4 and [m["name"] for m in counted["machines"]] == ["d"]
    selected = ok(cimi(client, "GET", "machines?$select=name&$orderby=name&$last=1"))
    assert selected["machines"] == [{"resourceURI": CIMI + "Machine",
                                     "id": selected["machines"][0]["id"], "name": "a"}]
    for bad in ("$filter=cpu=", "$first=x", "$orderby=name:up", "$last=1&$last=2"):
        refused = cimi(client, "GET", "machines?" + bad)
        assert refused.status_code == 400 and refused.get_json()["status"] == 400, bad


def test_a_search_by_put_with_a_form_body(client: Client) -> None:
    """SixSq's clients search by PUT on the collection with the query in a form body."""
    new_machine(client, "x")
    new_machine(client, "y")
    response = client.request("PUT", "/cimi/machines", data={"$filter": "name='y'"},
                              headers={"Accept": "application/json"})
    assert [m["name"] for m in ok(response)["machines"]] == ["y"]


def test_volumes_attached_and_detached_as_machine_volumes(client: Client) -> None:
    machine = new_machine(client)
    volume = ok(cimi(client, "POST", "volumes", {
        "resourceURI": CIMI + "VolumeCreate", "name": "data",
        "volumeTemplate": {"volumeConfig": {"capacity": 2 * 1024 * 1024}}}), 201)
    assert (volume["capacity"], volume["state"]) == (2 * 1024 * 1024, "AVAILABLE")
    assert client.attributes(occi_path(volume["id"]))["occi.storage.size"] == 2.0
    collection = ok(cimi(client, "GET", machine["volumes"]["href"]))
    assert collection["count"] == 0
    add = next(o["href"] for o in collection["operations"] if o["rel"] == "add")
    attached = ok(cimi(client, "POST", add, {"volume": {"href": volume["id"]},
                                              "initialLocation": "/dev/vdc"}), 201)
    assert attached["volume"] == {"href": volume["id"]}
    assert attached["state"] == "ATTACHED" and attached["initialLocation"] == "/dev/vdc"
    links = client.json(occi_path(machine["id"]))["links"]
    assert [link["target"]["location"] for link in links
            if link["kind"].endswith("storagelink")] == ["/" + occi_path(volume["id"])
                                                         .lstrip("/")]
    expanded = ok(cimi(client, "GET", machine["id"] + "?$expand=volumes"))
    assert expanded["volumes"]["machineVolumes"][0]["id"] == attached["id"]
    assert cimi(client, "DELETE", volume["id"]).status_code == 409  # in use
    ok(cimi(client, "DELETE", attached["id"]))
    assert ok(cimi(client, "GET", machine["volumes"]["href"]))["count"] == 0

    # DSP0263's insert and remove of an existing volume
    rels = {o["rel"] for o in collection["operations"]}
    assert rels == {"add", "insert", "remove"}
    inserted = ok(cimi(client, "POST", add, {
        "resourceURI": CIMI + "Action", "action": CIMI + "action/insert",
        "volume": {"href": volume["id"]}, "initialLocation": "/dev/vdd"}), 201)
    assert inserted["initialLocation"] == "/dev/vdd"
    job = ok(cimi(client, "POST", add, {"resourceURI": CIMI + "Action",
                                        "action": CIMI + "action/remove",
                                        "volume": {"href": volume["id"]}}))
    assert job["action"] == "delete" and job["state"] == "SUCCESS"
    assert ok(cimi(client, "GET", machine["volumes"]["href"]))["count"] == 0
    assert cimi(client, "POST", add, {"resourceURI": CIMI + "Action",
                                      "action": CIMI + "action/remove",
                                      "volume": {"href": volume["id"]}}).status_code == 404
    ok(cimi(client, "DELETE", volume["id"]))


def test_machines_created_with_interfaces_volumes_and_credentials(client: Client) -> None:
    network = client.network()
    volume = client.storage(1.0)
    machine = new_machine(
        client, "full",
        interfaceTemplates=[{"network": {"href": "network/" + network.rpartition("/")[2]}}],
        volumes=[{"volume": {"href": "volume/" + volume.rpartition("/")[2]}}],
        credential={"publicKey": "ssh-ed25519 AAAAC3Nza alice@laptop"},
        userData="#cloud-config\n")
    attributes = client.attributes(occi_path(machine["id"]))
    assert attributes["occi.credentials.ssh.publickey"] == "ssh-ed25519 AAAAC3Nza alice@laptop"
    interfaces = ok(cimi(client, "GET", machine["networkInterfaces"]["href"]))
    assert interfaces["count"] == 1
    interface = interfaces["networkInterfaces"][0]
    assert interface["network"] == {"href": "network/" + network.rpartition("/")[2]}
    assert interface["mac"] and interface["addresses"][0]["ip"].startswith("10.9.0.")
    network_view = ok(cimi(client, "GET", interface["network"]["href"]))
    assert network_view["networkType"] == "PRIVATE"
    links = client.json(occi_path(machine["id"]))["links"]
    assert {link["kind"] for link in links} >= {NETWORKINTERFACE}


def test_a_machine_created_by_value(client: Client) -> None:
    machine = new_machine(client, config={"cpu": 3, "memory": 512 * 1024})
    assert (machine["cpu"], machine["memory"]) == (3, 512 * 1024)
    assert client.attributes(occi_path(machine["id"]))["occi.compute.memory"] == 0.5


def test_xml_both_ways(client: Client) -> None:
    body = ('<MachineCreate xmlns="http://schemas.dmtf.org/cimi/2">'
            "<name>in xml</name><machineTemplate>"
            '<machineConfig href="machineConfig/small"/>'
            '<machineImage href="http://localhost/cimi/machineImage/debian-12"/>'
            "</machineTemplate></MachineCreate>")
    response = cimi(client, "POST", "machines", body, accept="application/xml",
                    **{"Content-Type": "application/xml"})
    assert response.status_code == 201, response.get_data(as_text=True)
    root = ET.fromstring(response.data)
    assert root.tag == NS + "Machine"
    assert root.findtext(NS + "name") == "in xml" and root.findtext(NS + "cpu") == "1"
    rels = [o.attrib["rel"] for o in root.findall(f"{NS}operations/{NS}operation")]
    assert "edit" in rels and CIMI + "action/stop" in rels
    listed = ET.fromstring(cimi(client, "GET", "machines", accept="application/xml").data)
    assert listed.tag == NS + "Collection"
    assert listed.attrib["resourceURI"] == CIMI + "MachineCollection"
    assert listed.findtext(NS + "count") == "1"
    assert [m.findtext(NS + "name") for m in listed.findall(f"{NS}machines/{NS}Machine")] == \
        ["in xml"]
    machine_id = listed.findtext(f"{NS}machines/{NS}Machine/{NS}id")
    action = ('<Action xmlns="http://schemas.dmtf.org/cimi/2">'
              "<action>http://schemas.dmtf.org/cimi/2/action/stop</action>"
              "<force>true</force></Action>")
    job = ET.fromstring(cimi(client, "POST", machine_id, action, accept="application/xml",
                             **{"Content-Type": "application/xml"}).data)
    assert job.tag == NS + "Job" and job.findtext(NS + "state") == "SUCCESS"
    template = ('<MachineTemplate xmlns="http://schemas.dmtf.org/cimi/2"><name>t</name>'
                '<machineConfig><cpu>2</cpu><memory>524288</memory></machineConfig>'
                '<machineImage href="machineImage/debian-12"/>'
                '<networkInterfaces><networkInterface><network href="network/none"/>'
                "</networkInterface></networkInterfaces></MachineTemplate>")
    refused = cimi(client, "POST", "machineTemplates", template,
                   **{"Content-Type": "application/xml"})
    assert refused.status_code == 400  # read as a template with one interface, to no network
    assert "/network/none does not exist" in refused.get_json()["message"]
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            "<MachineCreate><name>&a;</name></MachineCreate>")
    refused = cimi(client, "POST", "machines", bomb, accept="application/xml",
                   **{"Content-Type": "application/xml"})
    assert refused.status_code == 400
    error = ET.fromstring(refused.data)
    assert error.tag == NS + "Error" and "DOCTYPE" in error.findtext(NS + "message")


@pytest.mark.parametrize("method, path, body, headers, status, says", [
    ("POST", "machines", b"{not json", {"Content-Type": "application/json"}, 400, "not JSON"),
    ("POST", "machines", b"<x/>", {"Content-Type": "text/html"}, 415, "application/json"),
    ("POST", "machines", {"name": "x"}, {}, 400, "machineTemplate is missing"),
    ("POST", "machines", machine_create(config={"href": "machineConfig/huge"}), {}, 400,
     "no machine configuration huge"),
    ("POST", "machines", machine_create(config={"href": "volume/small"}), {}, 400,
     "is not a MachineConfiguration"),
    ("POST", "machines", {**machine_create(), "properties": {"a": "b"}}, {}, 400, "properties"),
    ("POST", "machines", {"resourceURI": CIMI + "VolumeCreate"}, {}, 400, "MachineCreate"),
    ("POST", "machineConfigs", {}, {}, 405, "POST"),
    ("POST", "machines", machine_create(initialState="STOPPED"), {}, 400, "initialState"),
    ("POST", "machines", machine_create(volumeTemplates=[{"volumeTemplate": {}}]), {}, 400,
     "volumeTemplates are not offered"),
    ("GET", "nothing", None, {}, 404, "no CIMI collection"),
    ("GET", "machine/none", None, {}, 404, "no Machine"),
    ("GET", "a/b/c/d/e", None, {}, 404, "nothing at /cimi/a/b/c/d/e"),
    ("GET", "machines", None, {"Accept": "text/html"}, 406, "application/xml"),
    ("GET", "machines", None, {"CIMI-Specification-Version": "1.1"}, 400, "CIMI 2.0"),
])
def test_bad_requests_get_cimi_errors(client: Client, method: str, path: str, body: Any,
                                      headers: dict[str, str], status: int, says: str) -> None:
    response = cimi(client, method, path, body, **{"Accept": "application/json", **headers})
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json(force=True)
    assert error["status"] == status and says in error["message"], error
    assert ok(cimi(client, "GET", "machines"))["count"] == 0  # nothing was made


def test_a_long_create_answers_202_with_its_job(make_app) -> None:
    client = Client(make_app(job_wait_seconds=0))
    response = cimi(client, "POST", "machines", machine_create("slow"))
    assert response.status_code in (201, 202), response.get_data(as_text=True)
    job_uri = response.headers["CIMI-Job-URI"]
    assert job_uri.startswith("http://localhost/cimi/job/")
    deadline = time.monotonic() + 10
    while ok(cimi(client, "GET", job_uri.removeprefix("http://localhost")))["state"] \
            == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    job = ok(cimi(client, "GET", job_uri.removeprefix("http://localhost")))
    assert (job["state"], job["action"]) == ("SUCCESS", "add")
    assert ok(cimi(client, "GET", job["targetResource"]["href"]))["state"] == "STARTED"


def test_tenants_and_quotas_hold_as_in_occi(make_app) -> None:
    app = make_app(auth="basic", users=site_users(),
                   quotas={"default": {"instances": 1}})
    alice, bob = client_of(app, "alice"), client_of(app, "bob")
    assert cimi(Client(app), "GET", "machines").status_code == 401
    machine = new_machine(alice)
    assert ok(cimi(bob, "GET", "machines"))["count"] == 0
    for method in ("GET", "PUT", "DELETE"):
        response = cimi(bob, method, machine["id"], {"name": "mine"} if method == "PUT"
                        else None)
        assert response.status_code == 404, method
    assert cimi(bob, "POST", machine["id"] + "/action/stop").status_code == 404
    over = cimi(alice, "POST", "machines", machine_create("second"))
    assert over.status_code == 403 and "quota" in over.get_json()["message"]
    assert ok(cimi(alice, "GET", "machines"))["count"] == 1


def test_addresses_are_ip_reservations(make_app) -> None:
    client = Client(make_app(floating_ip_pools={"public": "192.0.2.128/30"}))
    address = ok(cimi(client, "POST", "addresses", {
        "resourceURI": CIMI + "AddressCreate", "name": "front",
        "addressTemplate": {"ip": "192.0.2.129"}}), 201)
    assert address["ip"] == "192.0.2.129"
    assert client.attributes(occi_path(address["id"]))["occi.ipreservation.address"] == \
        "192.0.2.129"
    taken = cimi(client, "POST", "addresses", {"addressTemplate": {"ip": "192.0.2.129"}})
    assert taken.status_code == 409
    ok(cimi(client, "DELETE", address["id"]))


def test_user_mixins_may_not_take_the_cimi_path(client: Client) -> None:
    response = client.post_text("/-/", ['Category: mine; scheme="http://x.test/tags#"; '
                                        'class="mixin"; location="/cimi/mine/"'])
    assert response.status_code == 409


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBk alice@laptop"


def test_machines_from_kept_templates_and_credentials(client: Client) -> None:
    credential = ok(cimi(client, "POST", "credentials", {
        "resourceURI": CIMI + "CredentialCreate", "name": "laptop",
        "credentialTemplate": {"publicKey": KEY}}), 201)
    assert credential["publicKey"] == KEY and credential["id"].startswith("credential/")
    template = ok(cimi(client, "POST", "machineTemplates", {
        "resourceURI": CIMI + "MachineTemplate", "name": "web",
        "machineConfig": {"href": "machineConfig/medium"},
        "machineImage": {"href": "machineImage/debian-12"},
        "credential": {"href": credential["id"]}}), 201)
    assert ok(cimi(client, "GET", "machineTemplates"))["count"] == 1
    machine = ok(cimi(client, "POST", "machines", {
        "resourceURI": CIMI + "MachineCreate", "name": "from a template",
        "machineTemplate": {"href": template["id"], "userData": "#cloud-config\n"}}), 201)
    assert machine["cpu"] == 2
    attributes = client.attributes(occi_path(machine["id"]))
    assert attributes["occi.credentials.ssh.publickey"] == KEY
    assert attributes["occi.compute.userdata"] == "#cloud-config\n"

    renamed = ok(cimi(client, "PUT", template["id"], {"name": "web (2)"}))
    assert renamed["name"] == "web (2)" and renamed["machineConfig"] == \
        {"href": "machineConfig/medium"}
    assert cimi(client, "PUT", template["id"], {"machineImage": {}}).status_code == 400
    assert cimi(client, "DELETE", credential["id"]).status_code == 200
    refused = cimi(client, "POST", "machines", machine_create(
        credential={"href": credential["id"]}))
    assert refused.status_code == 400 and "no Credential" in refused.get_json()["message"]


@pytest.mark.parametrize("collection, body, says", [
    ("credentials", {"credentialTemplate": {"publicKey": "not a key"}}, "OpenSSH public key"),
    ("machineTemplates", {"machineConfig": {"href": "machineConfig/small"},
                          "machineImage": {"href": "machineImage/none"}}, "no machine image"),
    ("volumeConfigs", {"format": "qcow2", "capacity": 1024}, "format 'qcow2'"),
    ("volumeConfigs", {"name": "no size"}, "capacity"),
    ("networkConfigs", {"networkType": "PUBLIC"}, "needs address"),
    ("volumeTemplates", {"volumeConfig": {"href": "volumeConfig/none"}}, "no VolumeConfiguration"),
])
def test_templates_are_checked_when_kept(client: Client, collection: str, body: Any,
                                         says: str) -> None:
    refused = cimi(client, "POST", collection, body)
    assert refused.status_code == 400 and says in refused.get_json()["message"]
    assert ok(cimi(client, "GET", collection))["count"] == 0


def test_volumes_from_kept_configurations_and_templates(client: Client) -> None:
    config = ok(cimi(client, "POST", "volumeConfigs", {
        "resourceURI": CIMI + "VolumeConfiguration", "name": "3 GiB",
        "capacity": 3 * 1024 * 1024, "format": "raw"}), 201)
    template = ok(cimi(client, "POST", "volumeTemplates", {
        "volumeConfig": {"href": config["id"]}}), 201)
    volume = ok(cimi(client, "POST", "volumes", {
        "resourceURI": CIMI + "VolumeCreate", "volumeTemplate": {"href": template["id"]}}), 201)
    assert volume["capacity"] == 3 * 1024 * 1024
    assert client.attributes(occi_path(volume["id"]))["occi.storage.size"] == 3.0


def test_networks_created_private_and_public(make_app) -> None:
    client = Client(make_app(network_uplink="lo"))
    private = ok(cimi(client, "POST", "networks", {
        "resourceURI": CIMI + "NetworkCreate", "name": "lab",
        "networkTemplate": {"networkConfig": {"networkType": "PRIVATE",
                                              "address": "10.61.0.0/24"}}}), 201)
    assert (private["networkType"], private["state"]) == ("PRIVATE", "STARTED")
    assert client.attributes(occi_path(private["id"]))["occi.network.address"] == \
        "10.61.0.0/24"
    config = ok(cimi(client, "POST", "networkConfigs", {
        "networkType": "PUBLIC", "address": "10.62.0.0/24", "gateway": "10.62.0.1"}), 201)
    public = ok(cimi(client, "POST", "networks", {
        "networkTemplate": {"networkConfig": {"href": config["id"]}}}), 201)
    assert public["networkType"] == "PUBLIC"
    stopped = ok(cimi(client, "POST", public["id"] + "/action/stop"))
    assert stopped["action"] == CIMI + "action/stop"
    assert ok(cimi(client, "GET", public["id"]))["state"] == "STOPPED"
    assert client.attributes(occi_path(public["id"]))["occi.network.state"] == "inactive"
    ok(cimi(client, "DELETE", public["id"]))
    assert cimi(client, "GET", public["id"]).status_code == 404


def test_another_tenants_templates_are_not_found(make_app) -> None:
    app = make_app(auth="basic", users=site_users())
    alice, bob = client_of(app, "alice"), client_of(app, "bob")
    credential = ok(cimi(alice, "POST", "credentials", {"publicKey": KEY}), 201)
    assert ok(cimi(bob, "GET", "credentials"))["count"] == 0
    assert cimi(bob, "GET", credential["id"]).status_code == 404
    assert cimi(bob, "DELETE", credential["id"]).status_code == 404
    used = cimi(bob, "POST", "machines", machine_create(credential={"href": credential["id"]}))
    assert used.status_code == 400 and "no Credential" in used.get_json()["message"]
    assert ok(cimi(alice, "GET", credential["id"]))["publicKey"] == KEY


def test_rate_limits_answer_in_cimi(make_app) -> None:
    client = Client(make_app(rate_limit_anonymous="3/minute"))
    answers = [cimi(client, "GET", "machines") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.get_json()["status"] == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["CIMI-Specification-Version"] == "2.0"


# Attribute names of DSP0263 2.0's pseudo-schemas (5.5.12, 5.11, 5.12), beside
# the common ones every resource may carry.
COMMON = {"resourceURI", "id", "name", "description", "created", "updated", "properties",
          "operations"}
ENTRY_POINT = COMMON | {
    "baseURI", "resourceMetadata", "systems", "systemTemplates", "machines", "machineTemplates",
    "machineConfigs", "machineImages", "credentials", "credentialTemplates", "volumes",
    "volumeTemplates", "volumeConfigs", "volumeImages", "networks", "networkTemplates",
    "segments", "segmentTemplates", "endpoints", "endpointTemplates", "interfaces",
    "interfaceTemplates", "networkServices", "networkServiceTemplates", "jobs", "meters",
    "meterTemplates", "meterConfigs", "eventLogs", "eventLogTemplates"}
METADATA = COMMON | {"typeURI", "attributes", "vscope", "capabilities", "actions"}
CAPABILITY_FIELDS = {"name", "uri", "description", "value"}
ACTION_FIELDS = {"name", "uri", "description", "method", "inputMessage", "outputMessage"}


def test_serializations_follow_dsp0263s_pseudo_schemas(client: Client) -> None:
    entry = ok(cimi(client, "GET", ""))
    # CIMI 1.x's addresses and networkConfigs, which 2.0 dropped, stay as extensions (5.1)
    assert set(entry) - ENTRY_POINT == {"addresses", "networkConfigs"}
    assert entry["baseURI"].endswith("/")  # relative hrefs resolve by concatenation (5.5.10)
    assert all(not value["href"].startswith("/") for value in entry.values()
               if isinstance(value, dict))
    new_machine(client)
    for name in ("machines", "resourceMetadata", "jobs"):
        collection = ok(cimi(client, "GET", name))
        members = "resourceMetadatas" if name == "resourceMetadata" else name
        assert set(collection) <= {"resourceURI", "id", "count", members, "operations"}
        for member in collection[members]:
            assert {"resourceURI", "id"} <= set(member)
    for metadata in ok(cimi(client, "GET", "resourceMetadata"))["resourceMetadatas"]:
        assert set(metadata) <= METADATA and {"typeURI", "name"} <= set(metadata)
        for capability in metadata.get("capabilities", []):
            assert set(capability) <= CAPABILITY_FIELDS and capability["uri"].startswith(
                CIMI + "capability/" + metadata["name"] + "/")
        for action in metadata.get("actions", []):
            assert set(action) <= ACTION_FIELDS and {"name", "uri", "method"} <= set(action)
    # empty strings, maps and arrays are left out (5.5.15), at every depth
    def has_empty(value: Any) -> bool:
        if isinstance(value, dict):
            return any(v in ("", [], {}) or has_empty(v) for v in value.values())
        return isinstance(value, list) and any(has_empty(v) for v in value)
    for path in ("", "machines", "machineImages", "jobs", "resourceMetadata"):
        assert not has_empty(ok(cimi(client, "GET", path))), path


def test_a_body_too_large_is_413_in_cimi_form_and_makes_nothing(make_app) -> None:
    client = Client(make_app(max_body_bytes=2048))
    big = machine_create("x" * 4096)
    refused = cimi(client, "POST", "machines", big)
    assert refused.status_code == 413 and refused.get_json()["status"] == 413
    assert refused.headers["CIMI-Specification-Version"] == "2.0"
    assert ok(cimi(client, "GET", "machines"))["count"] == 0
