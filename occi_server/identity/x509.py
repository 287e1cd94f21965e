"""X.509 client certificates: subject DNs from the TLS connection or from a
trusted front proxy's headers, and VOMS attributes (FQANs) from that proxy."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

# The names Python's ssl module gives subject attributes, as written in DNs.
_SHORT_NAMES = {
    "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
    "organizationName": "O", "organizationalUnitName": "OU", "commonName": "CN",
    "domainComponent": "DC", "emailAddress": "emailAddress", "userId": "UID",
    "serialNumber": "serialNumber",
}
_RFC2253_SEPARATOR = re.compile(r"(?<!\\)[,;]")


def canonical_dn(text: str) -> str:
    """A DN in the grid's slash form ("/DC=org/DC=example/CN=Alice"), whether
    given so or in RFC 2253 form ("CN=Alice,DC=example,DC=org", as nginx and
    Apache pass it)."""
    text = text.strip()
    if text.startswith("/"):
        parts = [p for p in re.split(r"(?<!\\)/", text) if p]
    else:
        parts = [p.strip() for p in _RFC2253_SEPARATOR.split(text) if p.strip()]
        parts.reverse()  # RFC 2253 lists the most specific part first
    cleaned = []
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"not a distinguished name: {text!r}")
        cleaned.append(f"{name.strip()}={value.strip().replace(chr(92) + ',', ',')}")
    return "/" + "/".join(cleaned)


def peer_certificate_dn(certificate: dict[str, Any] | None) -> str | None:
    """The subject DN of a certificate as ssl.SSLSocket.getpeercert() returns it."""
    if not certificate or not certificate.get("subject"):
        return None
    parts = []
    for rdn in certificate["subject"]:
        for name, value in rdn:
            parts.append(f"{_SHORT_NAMES.get(name, name)}={value}")
    return "/" + "/".join(parts)


def fqans(header: str) -> tuple[str, ...]:
    """VOMS FQANs as a proxy passes them: separated by commas, semicolons or newlines."""
    return tuple(f.strip() for f in re.split(r"[,;\n]", header) if f.strip().startswith("/"))


def vo_of(fqan: str) -> str:
    """The VO of an FQAN: /vo.example.org/group/Role=x/Capability=NULL -> vo.example.org."""
    return fqan.strip("/").split("/")[0]


class TrustedProxies:
    """The addresses whose certificate headers are believed."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def __contains__(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)
