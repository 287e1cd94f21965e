"""Networks on real Linux bridges, dnsmasq and nftables, all inside network
namespaces the tests create: one plays the host (the service's bridges, DHCP
servers and NAT rules live there, with a dummy uplink), another plays a guest,
joined to a bridge by a veth pair, where busybox udhcpc must obtain exactly the
address the API reported. No packet leaves these namespaces."""

from __future__ import annotations

import os
import re
import shutil
import signal
import uuid
from pathlib import Path

import pytest

from occi_server.backends.bridge import bridge_name, vlan_port_name
from occi_server.service import Reconciler
from tests.conftest import IPNETWORK, NETWORK, NETWORKINTERFACE, Client, category
from tests.support.netns import Namespaces, run
from tests.support.tinyguest import tiny_guest


def _unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for command in ("ip", "dnsmasq", "dhcp_release", "nft", "nsenter", "busybox"):
        if shutil.which(command) is None:
            return f"{command} is not installed (scripts/setup.sh installs it)"
    return None


pytestmark = pytest.mark.skipif(_unavailable_reason() is not None,
                                reason=_unavailable_reason() or "")
IPNETWORKINTERFACE = ("http://schemas.ogf.org/occi/infrastructure/networkinterface#"
                      "ipnetworkinterface")
PUBLIC = "http://schemas.occi-server.org/occi/infrastructure/network#public"
NETWORK_ACTION = "http://schemas.ogf.org/occi/infrastructure/network/action#"


def bridge_site(make_app, namespaces: Namespaces, networks_dir: Path,
                **settings: object) -> Client:
    """A site whose bridges, DHCP servers and nftables rules live in the test's
    host namespace, with uplink0 as its uplink."""
    return Client(make_app(network_backend="bridge", network_namespace=namespaces.host,
                           network_uplink="uplink0", networks_dir=str(networks_dir),
                           reconcile_seconds=0, **settings))


@pytest.fixture
def client(make_app, namespaces: Namespaces, networks_dir: Path) -> Client:
    return bridge_site(make_app, namespaces, networks_dir)


def in_host(spaces: Namespaces, *args: str, check: bool = True):
    return run("ip", "netns", "exec", spaces.host, *args, check=check)


def link_of(spaces: Namespaces, name: str) -> str:
    return run("ip", "-n", spaces.host, "-d", "addr", "show", "dev", name).stdout


def dnsmasq_pids(spaces: Namespaces) -> list[int]:
    return [int(pid) for pid in run("ip", "netns", "pids", spaces.host).stdout.split()
            if Path(f"/proc/{pid}/comm").read_text().strip() == "dnsmasq"]


def create_network(client: Client, cidr: str = "10.77.0.0/24", gateway: str = "10.77.0.1",
                   *extra: str, mixins: tuple[str, ...] = (IPNETWORK,)) -> str:
    return client.create(NETWORK, f'X-OCCI-Attribute: occi.network.address="{cidr}"',
                         f'X-OCCI-Attribute: occi.network.gateway="{gateway}"', *extra,
                         mixins=mixins)


def interface(client: Client, compute: str, network: str) -> dict:
    path = client.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                         f'X-OCCI-Attribute: occi.core.target="{network}"',
                         mixins=(IPNETWORKINTERFACE,))
    return {"path": path, **client.attributes(path)}


def plug_guest(spaces: Namespaces, bridge: str, port: str, mac: str) -> None:
    """A veth pair: `port` on the bridge, the guest's eth0 with `mac` in the guest namespace."""
    run("ip", "-n", spaces.host, "link", "add", port, "type", "veth", "peer", "name", "eth0",
        "netns", spaces.guest)
    run("ip", "-n", spaces.host, "link", "set", port, "master", bridge, "up")
    run("ip", "-n", spaces.guest, "link", "set", "eth0", "address", mac, "up")


def lease(spaces: Namespaces) -> str | None:
    """The address busybox udhcpc obtains in the guest namespace, if any."""
    result = run("ip", "netns", "exec", spaces.guest, "busybox", "udhcpc", "-i", "eth0", "-n",
                 "-q", "-t", "4", "-T", "1", "-s", "/bin/true", check=False)
    found = re.search(r"lease of (\S+) obtained", result.stdout + result.stderr)
    return found.group(1) if found else None


def test_a_network_is_a_bridge_with_its_gateway_and_dhcp(client: Client,
                                                        namespaces: Namespaces) -> None:
    network = create_network(client)
    bridge = bridge_name(client.stored(network))
    shown = link_of(namespaces, bridge)
    assert "bridge" in shown and "inet 10.77.0.1/24" in shown and "UP" in shown.split(">")[0]
    attributes = client.attributes(network)
    assert attributes["occi.network.state"] == "active"
    assert "DHCP served" in attributes["occi.network.state.message"]
    assert len(dnsmasq_pids(namespaces)) == 1
    assert client.request("DELETE", network).status_code == 200
    assert run("ip", "-n", namespaces.host, "link", "show", bridge, check=False).returncode != 0
    assert dnsmasq_pids(namespaces) == []


def test_the_guest_obtains_the_address_the_api_reported(client: Client,
                                                        namespaces: Namespaces) -> None:
    network, compute = create_network(client), client.compute()
    nic = interface(client, compute, network)
    assert nic["occi.networkinterface.address"] == "10.77.0.2"
    assert nic["occi.networkinterface.gateway"] == "10.77.0.1"
    bridge = bridge_name(client.stored(network))
    plug_guest(namespaces, bridge, "vtest0", nic["occi.networkinterface.mac"])
    assert lease(namespaces) == "10.77.0.2"
    # An interface the service did not create gets nothing (static DHCP).
    run("ip", "-n", namespaces.guest, "link", "set", "eth0", "address", "52:54:00:de:ad:01")
    assert lease(namespaces) is None
    # Entries change live: a deleted interface's MAC is refused from then on.
    run("ip", "-n", namespaces.guest, "link", "set", "eth0", "address",
        nic["occi.networkinterface.mac"])
    assert client.request("DELETE", nic["path"]).status_code == 200
    assert lease(namespaces) is None
    again = interface(client, compute, network)
    run("ip", "-n", namespaces.guest, "link", "set", "eth0", "address",
        again["occi.networkinterface.mac"])
    assert lease(namespaces) == again["occi.networkinterface.address"] == "10.77.0.2"
    leases = (Path(client.app.extensions["occi.config"].networks_path) / bridge / "leases")
    assert again["occi.networkinterface.mac"] in leases.read_text()


def test_up_and_down_follow_the_real_link(client: Client, namespaces: Namespaces) -> None:
    network = create_network(client)
    bridge = bridge_name(client.stored(network))
    down = client.post_text(f"{network}?action=down", [category(NETWORK_ACTION + "down",
                                                                "action")])
    assert down.status_code == 200, down.get_data(as_text=True)
    assert client.attributes(network)["occi.network.state"] == "inactive"
    assert "UP" not in link_of(namespaces, bridge).split(">")[0]
    # Taken up behind the service's back: the reconciler reads it back.
    run("ip", "-n", namespaces.host, "link", "set", bridge, "up")
    Reconciler(client.app.extensions["occi.service"], 1).run_once()
    assert client.attributes(network)["occi.network.state"] == "active"


def test_a_dead_dhcp_server_is_restarted_and_reported(client: Client,
                                                      namespaces: Namespaces) -> None:
    network = create_network(client)
    [pid] = dnsmasq_pids(namespaces)
    os.kill(pid, signal.SIGKILL)
    reconciler = Reconciler(client.app.extensions["occi.service"], 1)
    assert reconciler.run_once() == 1
    assert "started again" in client.attributes(network)["occi.network.state.message"]
    assert len(dnsmasq_pids(namespaces)) == 1 and dnsmasq_pids(namespaces) != [pid]


def test_a_restart_adopts_bridges_and_dhcp_servers(make_app, client: Client,
                                                   namespaces: Namespaces,
                                                   networks_dir: Path) -> None:
    network, compute = create_network(client), client.compute()
    nic = interface(client, compute, network)
    before = dnsmasq_pids(namespaces)
    restarted = Client(make_app(network_backend="bridge", network_namespace=namespaces.host,
                                network_uplink="uplink0", networks_dir=str(networks_dir),
                                reconcile_seconds=0))
    assert Reconciler(restarted.app.extensions["occi.service"], 1).run_once() == 0
    assert dnsmasq_pids(namespaces) == before  # no second server
    plug_guest(namespaces, bridge_name(client.stored(network)), "vtest0",
               nic["occi.networkinterface.mac"])
    assert lease(namespaces) == nic["occi.networkinterface.address"]


def _vlan_unsupported() -> str | None:
    """Why this kernel cannot make 802.1Q interfaces (no 8021q module), or None."""
    if _unavailable_reason():
        return _unavailable_reason()
    scratch = f"occi-vlan-{uuid.uuid4().hex[:6]}"
    run("ip", "netns", "add", scratch)
    try:
        run("ip", "-n", scratch, "link", "add", "a0", "type", "veth", "peer", "name", "b0")
        made = run("ip", "-n", scratch, "link", "add", "link", "a0", "name", "a0.5", "type",
                   "vlan", "id", "5", check=False)
    finally:
        run("ip", "netns", "del", scratch, check=False)
    return None if made.returncode == 0 else \
        f"this kernel cannot make VLAN interfaces ({made.stderr.strip()}: no 8021q module)"


@pytest.mark.skipif(_vlan_unsupported() is not None, reason=_vlan_unsupported() or "")
def test_a_vlan_network_has_a_tagged_port_on_the_uplink(client: Client,
                                                        namespaces: Namespaces) -> None:
    network = create_network(client, "10.78.0.0/24", "10.78.0.1",
                             "X-OCCI-Attribute: occi.network.vlan=42")
    port = vlan_port_name(client.stored(network))
    shown = link_of(namespaces, port)
    assert "vlan protocol 802.1Q id 42" in shown and "@uplink0" in shown
    assert f"master {bridge_name(client.stored(network))}" in shown
    assert client.request("DELETE", network).status_code == 200
    assert run("ip", "-n", namespaces.host, "link", "show", port, check=False).returncode != 0


def test_a_site_without_uplink_refuses_vlans_and_public_networks(
        make_app, namespaces: Namespaces, networks_dir: Path) -> None:
    client = Client(make_app(network_backend="bridge", network_namespace=namespaces.host,
                             networks_dir=str(networks_dir), reconcile_seconds=0))
    for extra, mixins in ((["X-OCCI-Attribute: occi.network.vlan=42"], (IPNETWORK,)),
                          ([], (IPNETWORK, PUBLIC))):
        response = client.post_text("/network/", [
            category(NETWORK, "kind"), *(category(m, "mixin") for m in mixins),
            'X-OCCI-Attribute: occi.network.address="10.79.0.0/24"', *extra])
        assert response.status_code == 409 and "no uplink" in response.get_data(as_text=True)
    assert "Location" not in client.get("/network/").get_data(as_text=True)


def test_a_public_network_is_masqueraded_to_the_uplink(client: Client,
                                                       namespaces: Namespaces) -> None:
    network = create_network(client, "10.80.0.0/24", "10.80.0.1", mixins=(IPNETWORK, PUBLIC))
    table = f"occi_{bridge_name(client.stored(network))}"
    rules = in_host(namespaces, "nft", "list", "table", "ip", table).stdout
    assert 'ip saddr 10.80.0.0/24 oifname "uplink0" masquerade' in rules
    assert in_host(namespaces, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    service = client.app.extensions["occi.service"]
    service.backends.network.nat.apply(bridge_name(client.stored(network)), "10.80.0.0/24")
    assert in_host(namespaces, "nft", "list", "tables").stdout.count(table) == 1  # idempotent
    assert in_host(namespaces, "nft", "list", "table", "ip", table).stdout == rules
    assert client.request("DELETE", network).status_code == 200
    assert table not in in_host(namespaces, "nft", "list", "tables").stdout


def test_the_tiny_guest_obtains_its_lease_the_same_way(client: Client, namespaces: Namespaces,
                                                       tmp_path: Path) -> None:
    """The real tiny guest (QEMU on a tap in the host namespace, on the network's
    bridge, with the MAC the API chose) asks DHCP for its address at boot."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("QEMU is not installed (scripts/setup.sh installs it)")
    console = tmp_path / "console.log"
    with tiny_guest(client, namespaces, create_network(client), console) as guest:
        assert f"occi-tiny: lease eth0 {guest['address']}/24" in console.read_text()


def test_bridges_the_store_does_not_know_are_cleaned(make_app, namespaces: Namespaces,
                                                     networks_dir: Path) -> None:
    stray, foreign = "ob0000deadbeef", "br-foreign"
    for name in (stray, foreign):
        run("ip", "-n", namespaces.host, "link", "add", name, "type", "bridge")
    client = Client(make_app(network_backend="bridge", network_namespace=namespaces.host,
                             networks_dir=str(networks_dir), reconcile_seconds=1,
                             orphans="clean"))
    kept = create_network(client)
    shown = run("ip", "-n", namespaces.host, "link", "show").stdout
    assert stray not in shown  # removed at start-up
    assert foreign in shown  # not ours: left alone
    assert bridge_name(client.stored(kept)) in shown
    service = client.app.extensions["occi.service"]
    assert service.backends.network.orphans([]) == [bridge_name(client.stored(kept))]
