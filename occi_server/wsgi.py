"""Serving the application with gunicorn, started from `occi-server serve`."""

from __future__ import annotations

from typing import Any

import gunicorn.http.wsgi
from flask import Flask
from gunicorn.app.base import BaseApplication

from occi_server import SERVER_HEADER


class GunicornServer(BaseApplication):
    """Gunicorn with the application already built (the master creates it once,
    runs the migrations, then forks the workers)."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        # Gunicorn writes its own Server header from this module global and
        # drops the application's; OCCI needs ours (with OCCI/1.2) on every response.
        gunicorn.http.wsgi.SERVER = SERVER_HEADER
        for key, value in self.options.items():
            if key in self.cfg.settings:  # e.g. control_socket_disable, new in gunicorn 25.1
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application
