"""The authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass

from occi_server.errors import Forbidden
from occi_server.store import Scope


@dataclass(frozen=True)
class Principal:
    """A caller: its name (user name, token subject or certificate DN), the
    tenants it may act for (the first is the one it acts for unless it asks
    for another), and whether it is an operator."""

    name: str
    tenants: tuple[str, ...]
    admin: bool = False
    method: str = "none"  # basic, oidc, x509 or none
    fqans: tuple[str, ...] = ()  # VOMS attributes, for accounting

    def scope(self, wanted_tenant: str | None) -> Scope:
        """The store scope of a request that asks to act for `wanted_tenant`."""
        if wanted_tenant and wanted_tenant not in self.tenants and not self.admin:
            raise Forbidden(f"{self.name} may not act for tenant {wanted_tenant}; yours: "
                            + (", ".join(self.tenants) or "none"))
        tenant = wanted_tenant or (self.tenants[0] if self.tenants else "")
        if not tenant:
            raise Forbidden(f"{self.name} belongs to no tenant of this site; ask its "
                            "operators to map your group, VO or account to one")
        return Scope(tenant=tenant, owner=self.name, everything=self.admin)
