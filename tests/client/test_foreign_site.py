"""The client against another implementation's rendering: a site whose /-/ was
written from the OCCI spec's and rOCCI's examples (compute at /vm/, provider
schemes, rel with two ids, only the OpenStack contextualization mixins), served
on loopback by a recording stub. Also bearer tokens and X.509 client certificates."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from occi_server.client import CertificateAuth, ClientError, OcciClient, TokenAuth
from occi_server.client.cli import cli

QUERY = (Path(__file__).parent / "fixtures" / "rocci-query-interface.txt").read_text()
VM = ('Category: compute;scheme="http://schemas.ogf.org/occi/infrastructure#";class="kind"\n'
      'X-OCCI-Attribute: occi.core.id="87f3bfc3-42d4-4474-b45c-757e55e093e9"\n'
      'X-OCCI-Attribute: occi.compute.state="active"\n'
      'Link: </net/public>;rel="http://schemas.ogf.org/occi/infrastructure#network";'
      'self="/networkinterface/compute_87f3_nic_public";'
      'category="http://schemas.ogf.org/occi/infrastructure#networkinterface '
      'http://schemas.ogf.org/occi/infrastructure/networkinterface#ipnetworkinterface";'
      'occi.networkinterface.address="147.228.1.10"\n'
      'Link: </vm/87f3bfc3-42d4-4474-b45c-757e55e093e9?action=stop>;'
      'rel="http://schemas.ogf.org/occi/infrastructure/compute/action#stop"\n')


class Stub(http.server.BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict[str, str], str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: str = "", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Server", "rOCCI-server/1.1.10 OCCI/1.1")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        data = body.encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        Stub.requests.append((self.command, self.path, dict(self.headers), body))

    def do_GET(self) -> None:
        self._record()
        if self.path == "/-/":
            self._answer(200, QUERY)
        elif self.path == "/vm/":
            self._answer(200, f"X-OCCI-Location: {self._base()}/vm/"
                              "87f3bfc3-42d4-4474-b45c-757e55e093e9\n")
        elif self.path.startswith("/vm/87f3"):
            self._answer(200, VM)
        else:
            self._answer(404, "Not found")

    def do_POST(self) -> None:
        self._record()
        if self.path == "/vm/":
            self._answer(201, "", Location=f"{self._base()}/vm/87f3bfc3-42d4-4474-b45c-"
                                            "757e55e093e9")
        else:
            self._answer(200, "")

    def _base(self) -> str:
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"


def serve(context: ssl.SSLContext | None = None) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def site() -> Iterator[str]:
    Stub.requests = []
    server, url = serve()
    yield url
    server.shutdown()


def test_discovery_depends_on_none_of_our_naming(site: str) -> None:
    model = OcciClient(site).discover()
    assert model.kind("compute").location == "/vm/"
    image = model.mixin("os_tpl#uuid_ubuntu_14_04_lts_fedcloud_warg_149")
    assert image.scheme == "http://occi.localhost/occi/infrastructure/os_tpl#"
    assert [t.term for t in model.templates("resource_tpl")] == ["small"]
    assert model.mixin("resource_tpl#small").scheme == \
        "http://fedcloud.egi.eu/occi/compute/flavour/1.0#"


def test_create_with_legacy_context_and_read_back(site: str, tmp_path: Path) -> None:
    key = tmp_path / "key.pub"
    key.write_text("ssh-rsa AAAAB3 user@ui\n")
    result = CliRunner().invoke(cli, [
        "--endpoint", site, "--token", "eyJhbGciOi.token", "-o", "json", "run",
        "uuid_ubuntu_14_04_lts_fedcloud_warg_149", "--flavour", "small",
        "--ssh-key", str(key), "--wait"], env={"OCCI_SITES": None, "HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert '"147.228.1.10"' in result.output
    method, path, headers, body = next(r for r in Stub.requests if r[0] == "POST")
    assert (method, path) == ("POST", "/vm/")
    assert headers["Authorization"] == "Bearer eyJhbGciOi.token"
    assert "OCCI/1.2" in headers["User-Agent"]
    assert 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; ' \
           'class="kind"' in body
    assert 'Category: public_key; scheme="http://schemas.openstack.org/instance/credentials#"' \
        in body
    assert 'X-OCCI-Attribute: org.openstack.credentials.publickey.data="ssh-rsa AAAAB3 ' \
           'user@ui"' in body


def test_listing_and_actions_on_the_foreign_site(site: str) -> None:
    client = OcciClient(site, auth=TokenAuth("t"))
    [vm] = client.list("compute")
    entity = client.describe(vm)
    assert entity.state == "active" and entity.addresses == ["147.228.1.10"]
    assert entity.actions == ["stop"]
    client.trigger(vm, "stop", {"method": "acpioff"})
    _, path, _, body = [r for r in Stub.requests if r[0] == "POST"][-1]
    assert path == "/vm/87f3bfc3-42d4-4474-b45c-757e55e093e9?action=stop"
    assert body.splitlines() == [
        'Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#"; '
        'class="action"', 'X-OCCI-Attribute: method="acpioff"']


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_x509_client_certificate(tmp_path: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    key_options = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key_options, "-days", "1", "-subj", "/O=occi-test/CN=Test CA",
            "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"),
                            ("alice", "extendedKeyUsage=clientAuth")):
        openssl("req", *key_options, "-subj", f"/O=occi-test/CN={name}", "-keyout",
                f"{name}.key", "-out", f"{name}.csr")
        (tmp_path / f"{name}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out",
                f"{name}.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED  # no certificate, no service
    context.load_verify_locations(tmp_path / "ca.pem")
    Stub.requests = []
    server, url = serve(context)
    try:
        client = OcciClient(url, verify=str(tmp_path / "ca.pem"), auth=CertificateAuth(
            str(tmp_path / "alice.pem"), str(tmp_path / "alice.key")))
        assert client.discover().kind("compute").location == "/vm/"
        anonymous = OcciClient(url, verify=str(tmp_path / "ca.pem"), timeout=5)
        with pytest.raises(ClientError, match="cannot reach"):
            anonymous.discover()
    finally:
        server.shutdown()
