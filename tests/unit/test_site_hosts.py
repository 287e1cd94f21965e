"""The operator's hypervisor hosts at their boundaries: SSH targets parsed (and
anything that could reach ssh as an option refused), the libvirt URI that pins
the host key, the store's hosts added, listed, drained and removed through
libvirt's test driver, and placement leaving draining hosts out. The real
thing, over SSH to a second libvirtd, is tests/integration/test_ssh_hosts.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from occi_server.backends.base import HostEntry
from occi_server.backends.libvirt import ssh
from occi_server.config import load_config
from occi_server.errors import BackendFailure, Conflict, NotFound
from occi_server.service import hosts
from occi_server.store import Store

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

SIMULATOR = "test:///default"


@pytest.mark.parametrize(("text", "expected"), [
    ("node2", ("root", "node2", 22)),
    ("admin@hv-2.example.org:2222", ("admin", "hv-2.example.org", 2222)),
    ("root@10.0.0.7", ("root", "10.0.0.7", 22)),
    ("root@[fd00::7]:22", ("root", "fd00::7", 22)),
])
def test_ssh_targets_are_parsed(text: str, expected: tuple[str, str, int]) -> None:
    target = ssh.Target.parse(text)
    assert (target.user, target.address, target.port) == expected


@pytest.mark.parametrize("text", ["-oProxyCommand=touch /tmp/x", "root@-p1", "root@host;id",
                                  "root@host:0", "root@host:70000", "Root@host", "", "@host"])
def test_what_ssh_could_take_for_an_option_or_a_command_is_refused(text: str) -> None:
    with pytest.raises(BackendFailure, match="not an SSH target"):
        ssh.Target.parse(text)


def test_the_libvirt_uri_logs_in_with_the_site_key_and_pins_the_host_key(
        tmp_path: Path) -> None:
    data = tmp_path / "occi data"
    uri = ssh.libvirt_uri("root@[fd00::7]:2222", data)
    assert uri == (f"qemu+ssh://root@[fd00::7]:2222/system?command={tmp_path}/occi%20data/ssh/"
                   f"ssh&keyfile={tmp_path}/occi%20data/ssh/id_ed25519&no_tty=1")
    wrapper = (data / "ssh" / "ssh").read_text()
    assert f"-i '{data}/ssh/id_ed25519'" in wrapper
    assert f"-o 'UserKnownHostsFile={data}/ssh/known_hosts'" in wrapper
    assert "-o StrictHostKeyChecking=yes" in wrapper and "-o BatchMode=yes" in wrapper
    assert ssh.libvirt_uri(SIMULATOR, data) == SIMULATOR


def test_the_site_key_is_made_once(tmp_path: Path) -> None:
    first = ssh.public_key(tmp_path)
    assert first.startswith("ssh-ed25519 ") and first.endswith(" occi-server")
    assert ssh.public_key(tmp_path) == first
    assert (tmp_path / "ssh" / "id_ed25519").stat().st_mode & 0o077 == 0


@pytest.fixture
def site(tmp_path: Path) -> tuple[Store, object]:
    config = load_config(environ={}, backend="simulated", compute_backend="libvirt",
                         data_dir=str(tmp_path))
    store = Store(config.effective_database_url)
    store.migrate()
    return store, config


def test_hosts_are_added_listed_drained_and_removed(site: tuple[Store, object]) -> None:
    store, config = site
    with pytest.raises(BackendFailure, match="not a host name"):
        hosts.add(store, config, SIMULATOR)
    view = hosts.add(store, config, SIMULATOR, name="sim")
    assert view.capacity is not None and view.capacity.cores == 16  # the test driver's node
    with pytest.raises(Conflict, match="already"):
        hosts.add(store, config, SIMULATOR, name="other")
    with pytest.raises(Conflict, match="already"):
        hosts.add(store, config, "qemu:///system", name="local")  # the configured one
    listed = {view.name: view for view in hosts.listing(store, config)}
    assert listed["qemu:///system"].configured and not listed["sim"].configured
    assert listed["sim"].capacity is not None and not listed["sim"].draining
    hosts.drain(store, config, "sim")
    hosts.drain(store, config, "qemu:///system")  # a configured host, by its URI
    assert all(view.draining for view in hosts.listing(store, config))
    assert [(e.name, e.uri, e.draining) for e in hosts.entries(store, config.data_path)] == [
        ("sim", SIMULATOR, True), ("qemu:///system", "qemu:///system", True)]
    with pytest.raises(NotFound):
        hosts.drain(store, config, "nowhere")
    hosts.remove(store, config, "sim")
    hosts.remove(store, config, "qemu:///system")  # its drain record goes: it takes guests
    assert [view.name for view in hosts.listing(store, config)] == ["qemu:///system"]
    assert not hosts.listing(store, config)[0].draining
    with pytest.raises(NotFound):
        hosts.remove(store, config, "sim")


def test_placement_leaves_draining_hosts_out() -> None:
    from occi_server.backends.libvirt.hosts import Hosts
    site_hosts = Hosts(["test:///default"], "occi-")
    entries = [HostEntry("sim", "test:///default", draining=True)]
    site_hosts.follow(lambda: entries)
    with pytest.raises(BackendFailure, match="every hypervisor host is draining"):
        site_hosts.place(1024)
    site_hosts.follow(lambda: [])
    assert site_hosts.place(1024).uri == "test:///default"
    assert site_hosts.place(1024, vcpus=16 * 16).uri == "test:///default"
    with pytest.raises(BackendFailure, match="1 MiB of memory and 257 core"):
        site_hosts.place(1024, vcpus=16 * 16 + 1)


def test_placement_keeps_an_anti_affinity_group_apart(tmp_path: Path) -> None:
    """A group's next guest goes to a host without one of the group, even the
    busier one; with the group on every host it goes nowhere."""
    from occi_server.backends.libvirt.hosts import Hosts
    node = ("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1"
            "</threads><active>8</active><mhz>2000</mhz><model>x86_64</model></cpu>"
            "<memory>16777216</memory>{}</node>")
    domain = ("<domain type='test'><name>{}</name><memory>524288</memory><vcpu>1</vcpu>"
              "<os><type>hvm</type></os></domain>")
    idle, busy = tmp_path / "idle.xml", tmp_path / "busy.xml"
    idle.write_text(node.format(domain.format("occi-member000001")))
    busy.write_text(node.format("".join(domain.format(f"occi-other00000{n}") for n in (1, 2))))
    site_hosts = Hosts([f"test://{idle}", f"test://{busy}"], "occi-")
    assert site_hosts.place(1024).uri == f"test://{idle}"  # the fewest guests
    assert site_hosts.place(1024, avoid=frozenset({"occi-member000001"})).uri == \
        f"test://{busy}"
    with pytest.raises(BackendFailure, match="anti-affinity group already"):
        site_hosts.place(1024, avoid=frozenset({"occi-member000001", "occi-other000001"}))
