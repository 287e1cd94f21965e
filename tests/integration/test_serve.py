"""`occi-server serve` for real: gunicorn workers on loopback, SQLite shared
between them, state kept across a restart."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from occi_server import SERVER_HEADER
from tests.support.postgres import find_bin, private_cluster

KIND = 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'
SERVER = Path(sys.executable).parent / "occi-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.verify: str | bool = True  # the CA file of a server with TLS

    def start(self, workers: int = 3, crash_at: str = "", **settings: str) -> None:
        env = {**os.environ, "OCCI_BACKEND": "simulated", "OCCI_CRASH_AT": crash_at,
               **{f"OCCI_{name.upper()}": value for name, value in settings.items()}}
        # Its log goes to a file: a pipe nobody reads fills up, and then every
        # thread that logs waits forever.
        log, name = tempfile.mkstemp(prefix="occi-serve-", suffix=".log")
        self.log = Path(name)
        self.process = subprocess.Popen(
            [str(SERVER), "serve", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data_dir), "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        os.close(log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/-/", timeout=1, verify=self.verify)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.log.read_text()) from None
                time.sleep(0.1)
        raise RuntimeError("occi-server did not answer within 30 s")

    def stop(self) -> None:
        """A clean stop (SIGTERM). A worker forked just before it has not set
        its own handlers yet and lets the signal pass (gunicorn then waits its
        whole graceful timeout for it): the workers still there are told again."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            for _ in range(15):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=2)
                    return
                with contextlib.suppress(OSError):  # OSError: the master is gone too
                    for pid in self.worker_pids():
                        os.kill(pid, signal.SIGTERM)
            self.process.wait(timeout=1)

    def worker_pids(self) -> set[int]:
        """The pids of the master's workers."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def kill(self) -> None:
        """kill -9 of the whole service: master and workers."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def serving(data_dir: Path, database: str, **settings: str) -> Iterator[Server]:
    """A running server on SQLite or on a private PostgreSQL cluster (the test is
    skipped where PostgreSQL is not installed); stopped, and its cluster gone, after."""
    with contextlib.ExitStack() as stack:
        if database == "postgresql":
            if not find_bin("initdb"):
                pytest.skip("PostgreSQL server binaries are not installed")
            settings["database_url"] = stack.enter_context(private_cluster())
        server = Server(data_dir)
        server.start(**settings)
        stack.callback(server.stop)
        yield server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    running.start()
    yield running
    running.stop()


def create(url: str, title: str) -> requests.Response:
    return requests.post(url + "/compute/", timeout=30,
                         data=f'{KIND}\nX-OCCI-Attribute: occi.core.title="{title}"\n',
                         headers={"Content-Type": "text/plain"})


def test_real_http_status_lines_and_headers(server: Server) -> None:
    response = create(server.url, "one")
    assert response.status_code == 201 and response.reason == "Created"
    assert response.headers["Server"] == SERVER_HEADER
    assert response.headers["Location"].startswith(server.url + "/compute/")
    missing = requests.get(server.url + "/compute/none", timeout=5)
    assert (missing.status_code, missing.reason) == (404, "Not Found")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_as_in_the_readme(server: Server) -> None:
    result = subprocess.run(
        ["curl", "-sS", "-i", "-X", "POST", f"{server.url}/compute/",
         "-H", "Content-Type: text/occi", "-H", f"Category: {KIND.partition(': ')[2]}",
         "-H", 'X-OCCI-Attribute: occi.core.title="from curl"'],
        capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.startswith("HTTP/1.1 201 Created")


def test_parallel_creates_lose_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.start(quotas=json.dumps({"default": {"instances": 60, "cores": 60}}))
    try:
        parallel_creates(server)
    finally:
        server.stop()


def parallel_creates(server: Server) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda i: create(server.url, f"vm{i}"), range(60)))
    assert [r.status_code for r in responses] == [201] * 60
    locations = {r.headers["Location"] for r in responses}
    listed = requests.get(server.url + "/compute/", headers={"Accept": "text/uri-list"},
                          timeout=30).text.split()
    assert len(locations) == 60 and set(listed) == locations


def test_state_survives_a_restart(tmp_path: Path) -> None:
    first = Server(tmp_path / "data")
    first.start(workers=1)
    location = create(first.url, "survivor").headers["Location"]
    first.stop()
    second = Server(tmp_path / "data")
    second.start(workers=1)
    try:
        path = location.split(f":{first.port}", 1)[1]
        response = requests.get(second.url + path, timeout=10,
                                headers={"Accept": "application/occi+json"})
        assert response.json()["title"] == "survivor"
    finally:
        second.stop()


def test_refuses_to_start_without_a_backend(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OCCI_BACKEND"}
    result = subprocess.run([str(SERVER), "serve", "--data-dir", str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "OCCI_BACKEND" in result.stderr


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_parallel_interfaces_get_distinct_addresses(tmp_path: Path, database: str) -> None:
    """50 interfaces created at once through 3 workers: 50 addresses, 50 MACs."""
    with serving(tmp_path / "data", database) as server:
        network = requests.post(server.url + "/network/", timeout=30, headers={
            "Content-Type": "text/occi",
            "Category": 'network; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
                        'class="kind", ipnetwork; scheme="http://schemas.ogf.org/occi/'
                        'infrastructure/network#"; class="mixin"',
            "X-OCCI-Attribute": 'occi.network.address="10.60.0.0/24", '
                                'occi.network.gateway="10.60.0.1"'})
        compute = create(server.url, "many interfaces")
        assert network.status_code == compute.status_code == 201

        def interface(_: int) -> requests.Response:
            return requests.post(server.url + "/link/networkinterface/", timeout=60, headers={
                "Content-Type": "text/occi",
                "Category": 'networkinterface; scheme="http://schemas.ogf.org/occi/'
                            'infrastructure#"; class="kind"',
                "X-OCCI-Attribute": f'occi.core.source="{compute.headers["Location"]}", '
                                    f'occi.core.target="{network.headers["Location"]}"'})

        with ThreadPoolExecutor(max_workers=16) as pool:
            responses = list(pool.map(interface, range(50)))
        assert [r.status_code for r in responses] == [201] * 50, responses[0].text
        rendered = [requests.get(r.headers["Location"], timeout=30,
                                 headers={"Accept": "application/occi+json"}).json()
                    for r in responses]
        addresses = {r["attributes"]["occi.networkinterface.address"] for r in rendered}
        macs = {r["attributes"]["occi.networkinterface.mac"] for r in rendered}
        assert len(addresses) == len(macs) == 50
        assert "10.60.0.1" not in addresses and "10.60.0.0" not in addresses


def test_metrics_add_up_every_worker(server: Server) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: requests.get(server.url + "/-/", timeout=30), range(40)))
    for _ in range(3):  # whichever worker answers the scrape, it counts all of them
        text = requests.get(server.url + "/metrics", timeout=30).text
        [count] = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("occi_requests_total{")
                   and 'route="/-/"' in line and 'status="200"' in line]
        assert count >= 40
    health = requests.get(server.url + "/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_a_restart_fails_the_jobs_it_interrupted(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.start(workers=1, simulated_delay_seconds="30", job_wait_seconds="0")
    try:
        location = create(server.url, "interrupted").headers["Location"]
        assert requests.get(location, timeout=30, headers={"Accept": "application/occi+json"}
                            ).json()["attributes"]["occi.compute.state"] == "waiting"
    finally:
        server.kill()  # kill -9 while the guest is being created
    server.start(workers=1)
    try:
        attributes = requests.get(location, timeout=30, headers={
            "Accept": "application/occi+json"}).json()["attributes"]
        assert attributes["occi.compute.state"] == "error"
        assert "job was interrupted" in attributes["occi.compute.state.message"]
        [job] = requests.get(server.url + "/jobs/", timeout=30).json()["jobs"]
        assert (job["state"], job["progress"]) == ("failed", "interrupted")
        assert requests.delete(location, timeout=30).status_code == 200
    finally:
        server.stop()


def raw_request(server: Server, data: bytes) -> bytes:
    """Send bytes as they are to the server on loopback; its answer's first line."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(data)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize(("request_bytes", "status"), [
    # Chunked bodies whose framing is broken.
    (b"POST /compute/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", b"400"),
    (b"POST /compute/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n0\r\n\r\n", b"400"),
    # A header line past max_header_bytes (128 KiB), a request line past 8190 bytes.
    (b"GET /-/ HTTP/1.1\r\nHost: x\r\nX-OCCI-Attribute: " + b"a" * 200_000 + b"\r\n\r\n",
     b"431"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
])
def test_malformed_framing_and_huge_headers_are_refused(server: Server, request_bytes: bytes,
                                                        status: bytes) -> None:
    line = raw_request(server, request_bytes)
    assert line.split(b" ")[1] == status, line
    assert requests.get(server.url + "/compute/", timeout=10).text == ""  # nothing stored
