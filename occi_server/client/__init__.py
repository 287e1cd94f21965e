"""The OCCI client library and the `occi` command line."""

from occi_server.client.api import (
    BasicAuth,
    CertificateAuth,
    ClientError,
    Entity,
    Model,
    OcciClient,
    TokenAuth,
)

__all__ = ["BasicAuth", "CertificateAuth", "ClientError", "Entity", "Model", "OcciClient",
           "TokenAuth"]
