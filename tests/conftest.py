"""Fixtures: an application on the simulated backend with a fresh data directory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from occi_server.config import load_config
from occi_server.core import Entity
from occi_server.http import create_app
from tests.support.postgres import find_bin, private_cluster

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
COMPUTE = INFRA + "compute"
STORAGE = INFRA + "storage"
NETWORK = INFRA + "network"
NETWORKINTERFACE = INFRA + "networkinterface"
STORAGELINK = INFRA + "storagelink"
SECURITYGROUP = INFRA + "securitygroup"
SECURITYGROUPLINK = INFRA + "securitygrouplink"
IPNETWORK = "http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"
COMPUTE_ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
CRTP = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
SITE = "http://occi.test/occi/"


def category(type_id: str, cls: str) -> str:
    scheme, _, term = type_id.rpartition("#")
    return f'Category: {term}; scheme="{scheme}#"; class="{cls}"'


class Client:
    """Flask's test client plus OCCI helpers."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.http = app.test_client()

    def request(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        return self.http.open(path, method=method, **kwargs)

    def get(self, path: str, accept: str = "text/plain", **kwargs: Any) -> TestResponse:
        headers = {"Accept": accept, **kwargs.pop("headers", {})}
        return self.http.get(path, headers=headers, **kwargs)

    def post_text(self, path: str, lines: list[str], accept: str = "text/plain",
                  method: str = "POST") -> TestResponse:
        return self.http.open(path, method=method, data="\n".join(lines) + "\n",
                              headers={"Content-Type": "text/plain", "Accept": accept})

    def post_json(self, path: str, document: Any, method: str = "POST",
                  accept: str = "application/occi+json") -> TestResponse:
        return self.http.open(path, method=method, data=json.dumps(document),
                              headers={"Content-Type": "application/occi+json",
                                       "Accept": accept})

    def create_response(self, kind: str, *lines: str,
                        mixins: tuple[str, ...] = ()) -> TestResponse:
        """POST an entity of `kind` in text/plain to its collection."""
        location = {COMPUTE: "/compute/", STORAGE: "/storage/", NETWORK: "/network/",
                    NETWORKINTERFACE: "/link/networkinterface/",
                    STORAGELINK: "/link/storagelink/", SECURITYGROUP: "/securitygroup/",
                    SECURITYGROUPLINK: "/link/securitygrouplink/"}[kind]
        body = [category(kind, "kind"), *(category(m, "mixin") for m in mixins), *lines]
        return self.post_text(location, body)

    def create(self, kind: str, *lines: str, mixins: tuple[str, ...] = ()) -> str:
        """Create an entity in text/plain; returns its path."""
        response = self.create_response(kind, *lines, mixins=mixins)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.headers["Location"].removeprefix("http://localhost")

    def compute(self, *lines: str, mixins: tuple[str, ...] = ()) -> str:
        return self.create(COMPUTE, *lines, mixins=mixins)

    def network(self, cidr: str | None = "10.9.0.0/24", gateway: str | None = "10.9.0.1") -> str:
        if cidr is None:
            return self.create(NETWORK)
        lines = [f'X-OCCI-Attribute: occi.network.address="{cidr}"']
        if gateway:
            lines.append(f'X-OCCI-Attribute: occi.network.gateway="{gateway}"')
        return self.create(NETWORK, *lines, mixins=(IPNETWORK,))

    def storage(self, size: float = 1.0) -> str:
        return self.create(STORAGE, f"X-OCCI-Attribute: occi.storage.size={size}")

    def json(self, path: str) -> Any:
        response = self.get(path, accept="application/occi+json")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json(force=True)

    def key(self, path: str) -> str:
        """The server's key of the entity at `path`: what its infrastructure is named by."""
        return self.stored(path).key

    def stored(self, path: str) -> Entity:
        """The entity at `path` as the store holds it (with its key)."""
        return stored_entity(self.app, path)

    def attributes(self, path: str) -> dict[str, Any]:
        return self.json(path)["attributes"]

    def settled(self, path: str, attribute: str, timeout: float) -> str:
        """A state `attribute` once no job is at work on the entity: a request
        hands its job off after `job_wait_seconds`, and the entity shows
        `waiting` until the job ends."""
        deadline = time.monotonic() + timeout
        while (value := self.attributes(path)[attribute]) == "waiting":
            assert time.monotonic() < deadline, f"{path} still waiting after {timeout} s"
            time.sleep(0.5)
        return value


def stored_entity(app: Flask, path: str) -> Entity:
    with app.extensions["occi.store"].transaction(write=False) as repo:
        entity = repo.by_location(path)
    assert entity is not None, f"nothing stored at {path}"
    return entity


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path) -> Iterator[AppFactory]:
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        values = {"backend": "simulated", "data_dir": str(tmp_path / "data"),
                  "site_scheme": SITE, **overrides}
        app = create_app(load_config(environ={}, **values))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        reconciler = app.extensions.get("occi.reconciler")
        if reconciler is not None:  # its thread would go on acting on what the test removes
            reconciler.stop()
        app.extensions["occi.store"].dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Client:
    return Client(app)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh store's URL: a SQLite file, and a private PostgreSQL cluster's."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    if not find_bin("initdb"):
        pytest.skip("PostgreSQL server binaries are not installed")
    with private_cluster() as url:
        yield url
