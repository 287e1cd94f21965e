"""A site with three users in two tenants plus an operator, and a client per user."""

from __future__ import annotations

import base64
from typing import Any

from flask import Flask
from werkzeug.security import generate_password_hash

from tests.conftest import Client

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "root": "root-pw"}
USERS: dict[str, Any] = {
    "alice": {"tenants": ["tenant-a"]},
    "bob": {"tenants": ["tenant-b"]},
    "root": {"tenants": ["ops"], "admin": True},
}


def site_users() -> dict[str, Any]:
    return {name: {**record, "password_hash": generate_password_hash(PASSWORDS[name],
                                                                     method="pbkdf2:sha256:1")}
            for name, record in USERS.items()}


def basic(user: str, password: str | None = None) -> str:
    token = base64.b64encode(f"{user}:{password or PASSWORDS[user]}".encode()).decode()
    return f"Basic {token}"


def client_of(app: Flask, user: str) -> Client:
    """A client whose every request carries the user's credentials."""
    client = Client(app)
    client.http.environ_base["HTTP_AUTHORIZATION"] = basic(user)
    return client
