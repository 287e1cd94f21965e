"""occi-server: an OCCI 1.2 IaaS cloud service."""

__version__ = "0.1.0"
OCCI_VERSION = "1.2"
SERVER_HEADER = f"occi-server/{__version__} OCCI/1.1 OCCI/{OCCI_VERSION}"
