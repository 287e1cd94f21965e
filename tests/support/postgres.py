"""A private PostgreSQL cluster on 127.0.0.1 for tests (initdb + pg_ctl), and
a proxy in front of it that counts round trips."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def private_cluster() -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh database; stops and removes the cluster after."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = "postgres" if _user_exists("postgres") else "nobody"
    # Its own directory: the server's user must be able to reach it.
    directory = Path(tempfile.mkdtemp(prefix="occi-pg-"))
    data = directory / "pgdata"
    if user:
        shutil.chown(directory, user)
    port = _free_port()

    def run(*args: str) -> None:
        command = ["runuser", "-u", user, "--", *args] if user else list(args)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    run(initdb, "-D", str(data), "--auth=trust", "-U", "occi", "--encoding=UTF8")
    run(pg_ctl, "-D", str(data), "-w", "-l", str(directory / "log"), "-o",
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://occi@127.0.0.1:{port}/postgres"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def round_trip_counter(url: str) -> Iterator[tuple[str, Callable[[], int]]]:
    """A URL reaching the database at `url` through a loopback proxy, and a
    function saying how many round trips its clients have made so far: times
    the server answered after a client had sent (what a client waits for)."""
    address = urlsplit(url)
    listener = socket.create_server(("127.0.0.1", 0))
    trips = [0]
    last_sender = [""]
    lock = threading.Lock()

    def pump(source: socket.socket, sink: socket.socket, sender: str) -> None:
        with source, sink, suppress(OSError):  # either end gone: both are closed
            while data := source.recv(65536):
                with lock:
                    if sender == "server" and last_sender[0] == "client":
                        trips[0] += 1
                    last_sender[0] = sender
                sink.sendall(data)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            server = socket.create_connection((address.hostname, address.port))
            for source, sink, sender in ((client, server, "client"), (server, client, "server")):
                threading.Thread(target=pump, args=(source, sink, sender), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        yield url.replace(f"{address.hostname}:{address.port}", f"127.0.0.1:{port}"), \
            lambda: trips[0]
    finally:
        listener.close()
