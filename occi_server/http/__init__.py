"""HTTP: the Flask application speaking the OCCI 1.2 HTTP protocol (GFD.223)."""

from occi_server.http.app import create_app

__all__ = ["create_app"]
