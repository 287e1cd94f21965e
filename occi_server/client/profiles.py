"""Endpoint profiles: the sites a user talks to, in a TOML file.

    # ~/.config/occi/sites.toml (or $OCCI_SITES)
    default = "cesnet"

    [sites.cesnet]
    endpoint = "https://carach5.ics.muni.cz:11443"
    auth = "x509"                       # none | basic | token | x509
    certificate = "~/.globus/usercert.pem"
    key = "~/.globus/userkey.pem"
    media_type = "text/plain"

    [sites.local]
    endpoint = "http://127.0.0.1:8080"
    auth = "basic"
    user = "alice"
    password_env = "OCCI_LOCAL_PASSWORD"   # or password = "…"
    tenant = "vo.example.org"              # if the user acts for several tenants
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from occi_server.client.api import (
    MEDIA_TYPES,
    Auth,
    BasicAuth,
    CertificateAuth,
    ClientError,
    OcciClient,
    TokenAuth,
)

DEFAULT_PATH = Path("~/.config/occi/sites.toml")
AUTH_KINDS = ("none", "basic", "token", "x509")


@dataclass(frozen=True)
class Site:
    name: str
    endpoint: str
    auth: str = "none"
    user: str | None = None
    password: str | None = None
    token: str | None = None
    certificate: str | None = None
    key: str | None = None
    media_type: str = "text/plain"
    verify: bool | str = True
    tenant: str | None = None  # the tenant to act for, when the user has several

    def client(self, timeout: float = 60.0) -> OcciClient:
        return OcciClient(self.endpoint, media_type=self.media_type, auth=self.credentials(),
                          verify=self.verify, timeout=timeout, tenant=self.tenant)

    def credentials(self) -> Auth:
        if self.auth == "basic":
            if not self.user or self.password is None:
                raise ClientError(f"site {self.name}: basic authentication needs a user and a "
                                  "password (--user/--password, or user/password in the profile)")
            return BasicAuth(self.user, self.password)
        if self.auth == "token":
            if not self.token:
                raise ClientError(f"site {self.name}: token authentication needs a token "
                                  "(--token, $OCCI_TOKEN, or token/token_file in the profile)")
            return TokenAuth(self.token)
        if self.auth == "x509":
            if not self.certificate:
                raise ClientError(f"site {self.name}: x509 authentication needs a certificate "
                                  "(--certificate, or certificate in the profile)")
            return CertificateAuth(self.certificate, self.key)
        return None


def load_sites(path: str | None) -> tuple[dict[str, Site], str | None]:
    """All profiles and the default site name; nothing when the file does not exist."""
    file = Path(path or os.environ.get("OCCI_SITES") or DEFAULT_PATH).expanduser()
    if not file.exists():
        if path:
            raise ClientError(f"no profile file at {file}")
        return {}, None
    try:
        document = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClientError(f"cannot read the profiles in {file}: {exc}") from None
    sites = {name: _site(name, values) for name, values in document.get("sites", {}).items()}
    default = document.get("default")
    if default is not None and default not in sites:
        raise ClientError(f"{file}: default site {default!r} is not among [sites]")
    return sites, default


def _site(name: str, values: dict) -> Site:
    if "endpoint" not in values:
        raise ClientError(f"site {name} has no endpoint")
    auth = values.get("auth", "none")
    if auth not in AUTH_KINDS:
        raise ClientError(f"site {name}: auth must be one of {', '.join(AUTH_KINDS)}")
    media_type = values.get("media_type", "text/plain")
    if media_type not in MEDIA_TYPES:
        raise ClientError(f"site {name}: media_type must be one of {', '.join(MEDIA_TYPES)}")
    password = values.get("password")
    if values.get("password_env"):
        password = os.environ.get(values["password_env"])
    token = values.get("token")
    if values.get("token_file"):
        token = Path(values["token_file"]).expanduser().read_text().strip()
    expand = lambda p: str(Path(p).expanduser()) if p else None  # noqa: E731
    return Site(name=name, endpoint=values["endpoint"], auth=auth, user=values.get("user"),
                password=password, token=token, certificate=expand(values.get("certificate")),
                key=expand(values.get("key")), media_type=media_type, tenant=values.get("tenant"),
                verify=expand(values["ca"]) if values.get("ca") else values.get("verify", True))
