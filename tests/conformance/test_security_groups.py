"""Security groups (the securitygroup and securitygrouplink kinds of rOCCI-server 2
and ooi sites): rules checked and stored in one spelling, in every rendering and
in /-/, and the filter each network interface gets from its compute's groups
(or the site's default rules), followed through links, changes and deletes.
The simulated network backend keeps each interface's filter; the kernel's
part is tests/integration/test_security_groups.py."""

from __future__ import annotations

import json

from occi_server.kinds.rules import Rule
from tests.conftest import (
    NETWORKINTERFACE,
    SECURITYGROUP,
    SECURITYGROUPLINK,
    Client,
    category,
)

WEB = [{"type": "inbound", "protocol": "tcp", "port": "80", "range": "0.0.0.0/0"},
       {"type": "ingress", "protocol": "TCP", "port": "8000:8080", "range": "192.0.2.7/24"},
       {"type": "outbound", "protocol": "udp", "port": 53, "range": "10.0.0.0/8",
        "ipversion": "IPv4"}]
WEB_STORED = [{"type": "inbound", "protocol": "tcp", "range": "0.0.0.0/0", "port": "80"},
              {"type": "inbound", "protocol": "tcp", "range": "192.0.2.0/24",
               "port": "8000-8080"},
              {"type": "outbound", "protocol": "udp", "range": "10.0.0.0/8", "port": "53"}]
DEFAULT = [Rule("inbound", "tcp", "0.0.0.0/0", (22, 22)), Rule("inbound", "icmp", "0.0.0.0/0")]


def group(client: Client, rules: list, title: str = "web") -> str:
    response = client.post_json("/securitygroup/", {
        "kind": SECURITYGROUP, "attributes": {"occi.core.title": title,
                                              "occi.securitygroup.rules": rules}})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.headers["Location"].removeprefix("http://localhost")


def nic(client: Client, compute: str, network: str):
    path = client.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                         f'X-OCCI-Attribute: occi.core.target="{network}"')
    return client.stored(path)


def join(client: Client, compute: str, securitygroup: str) -> str:
    return client.create(SECURITYGROUPLINK, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                         f'X-OCCI-Attribute: occi.core.target="{securitygroup}"')


def filter_of(client: Client, link) -> list[Rule] | None:
    return client.app.extensions["occi.service"].backends.network.rules_of(link)


def test_the_query_interface_declares_both_kinds(client: Client) -> None:
    text = client.get("/-/").get_data(as_text=True)
    assert 'Category: securitygroup; scheme="http://schemas.ogf.org/occi/infrastructure#"; ' \
           'class="kind"' in text
    assert 'location="/securitygroup/"' in text and 'location="/link/securitygrouplink/"' in text
    kinds = {kind["term"]: kind for kind in client.json("/-/")["kinds"]}
    rules = kinds["securitygroup"]["attributes"]["occi.securitygroup.rules"]
    assert rules["type"] == "array" and rules["mutable"] is True
    assert kinds["securitygrouplink"]["parent"] == "http://schemas.ogf.org/occi/core#link"


def test_rules_are_stored_in_one_spelling_and_rendered_as_a_list(client: Client) -> None:
    path = group(client, WEB)
    attributes = client.attributes(path)
    assert attributes["occi.securitygroup.rules"] == WEB_STORED
    assert attributes["occi.securitygroup.state"] == "active"
    text = client.get(path).get_data(as_text=True)
    line = next(line for line in text.splitlines() if "occi.securitygroup.rules" in line)
    assert json.loads(json.loads(line.split("=", 1)[1])) == WEB_STORED


def test_text_clients_send_the_rules_as_a_json_string(client: Client) -> None:
    rules = json.dumps([{"type": "inbound", "protocol": "tcp", "range": "10.0.0.0/24",
                         "port": "22"}])
    response = client.post_text("/securitygroup/", [
        category(SECURITYGROUP, "kind"), 'X-OCCI-Attribute: occi.core.title="ssh"',
        f"X-OCCI-Attribute: occi.securitygroup.rules={json.dumps(rules)}"])
    assert response.status_code == 201, response.get_data(as_text=True)
    path = response.headers["Location"].removeprefix("http://localhost")
    assert client.attributes(path)["occi.securitygroup.rules"] == json.loads(rules)


def test_wrong_rules_are_refused_saying_which_and_nothing_is_stored(client: Client) -> None:
    cases = {
        "type must be inbound or outbound": [{"type": "sideways"}],
        "rule 2: protocol must be tcp, udp, icmp or all": [
            {"type": "inbound"}, {"type": "inbound", "protocol": "gre"}],
        "range must be a CIDR": [{"type": "inbound", "range": "10.0.0.0/33"}],
        "ports run from 1 to 65535": [{"type": "inbound", "protocol": "tcp", "port": "0-99"}],
        "a port applies to tcp and udp": [{"type": "inbound", "protocol": "icmp", "port": 1}],
        "unknown key 'action'": [{"type": "inbound", "action": "drop"}],
        "does not match the range": [{"type": "inbound", "range": "::/0", "ipversion": "IPv4"}],
        "expected a JSON array": {"type": "inbound"},
    }
    for message, rules in cases.items():
        response = client.post_json("/securitygroup/", {
            "kind": SECURITYGROUP, "attributes": {"occi.securitygroup.rules": rules}})
        assert response.status_code == 400, (rules, response.get_data(as_text=True))
        assert message in response.get_json(force=True)["message"]
    assert client.get("/securitygroup/", accept="text/uri-list").get_data(as_text=True) == ""
    path = group(client, WEB)
    response = client.post_json(path, {"kind": SECURITYGROUP, "attributes": {
        "occi.securitygroup.rules": [{"type": "inbound", "port": "22"}]}})
    assert response.status_code == 400
    assert "a port applies to tcp and udp, not to all" in response.get_data(as_text=True)
    assert client.attributes(path)["occi.securitygroup.rules"] == WEB_STORED


def test_an_interface_follows_its_computes_groups(client: Client) -> None:
    compute, network = client.compute(), client.network()
    interface = nic(client, compute, network)
    assert filter_of(client, interface) == DEFAULT  # in no group: the site's default rules
    web = group(client, WEB)
    link = join(client, compute, web)
    assert client.attributes(link)["occi.securitygrouplink.state"] == "active"
    assert [rule.rendered() for rule in filter_of(client, interface)] == WEB_STORED
    icmp = group(client, [{"type": "inbound", "protocol": "icmp"}], title="ping")
    join(client, compute, icmp)
    assert filter_of(client, interface)[-1] == Rule("inbound", "icmp", "0.0.0.0/0")
    changed = [{"type": "inbound", "protocol": "udp", "port": "5000-5010"}]
    assert client.post_json(web, {"kind": SECURITYGROUP,
                                  "attributes": {"occi.securitygroup.rules": changed}}
                            ).status_code == 200
    assert filter_of(client, interface) == [Rule("inbound", "udp", "0.0.0.0/0", (5000, 5010)),
                                            Rule("inbound", "icmp", "0.0.0.0/0")]
    assert client.request("DELETE", link).status_code == 200
    assert filter_of(client, interface) == [Rule("inbound", "icmp", "0.0.0.0/0")]
    second = nic(client, compute, client.network("10.10.0.0/24", "10.10.0.1"))
    assert filter_of(client, second) == [Rule("inbound", "icmp", "0.0.0.0/0")]


def test_a_group_in_use_is_not_deleted_and_links_are_not_doubled(client: Client) -> None:
    compute, web = client.compute(), group(client, WEB)
    link = join(client, compute, web)
    response = client.create_response(
        SECURITYGROUPLINK, f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{web}"')
    assert response.status_code == 409 and "already" in response.get_data(as_text=True)
    response = client.request("DELETE", web)
    assert response.status_code == 409 and link in response.get_data(as_text=True)
    assert client.request("DELETE", link).status_code == 200
    assert client.request("DELETE", web).status_code == 200


def test_a_security_group_link_joins_a_compute_to_a_group_only(client: Client) -> None:
    compute, network = client.compute(), client.network()
    response = client.create_response(
        SECURITYGROUPLINK, f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{network}"')
    assert response.status_code == 400
    assert "joins a compute to a securitygroup" in response.get_data(as_text=True)


def test_filters_go_with_their_interfaces_and_computes(client: Client) -> None:
    network = client.compute(), client.network()
    compute, network = network
    interface = nic(client, compute, network)
    join(client, compute, group(client, WEB))
    backend = client.app.extensions["occi.service"].backends.network
    assert backend.guarded() == {interface.key}
    assert client.request("DELETE", compute).status_code == 200
    assert backend.guarded() == set()


def test_the_default_rules_are_the_sites_choice(make_app) -> None:
    client = Client(make_app(security_default_rules=[
        {"type": "inbound", "protocol": "tcp", "port": "443"}]))
    interface = nic(client, client.compute(), client.network())
    assert filter_of(client, interface) == [Rule("inbound", "tcp", "0.0.0.0/0", (443, 443))]
