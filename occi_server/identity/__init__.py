"""Who is calling: authentication (HTTP basic, OIDC bearer tokens, X.509
certificates), the tenants a caller acts for, and request rate limits."""

from occi_server.identity.authenticate import Authenticator, Credentials
from occi_server.identity.principal import Principal
from occi_server.identity.ratelimit import RateLimiter

__all__ = ["Authenticator", "Credentials", "Principal", "RateLimiter"]
