"""strongroom: a key-management server that speaks the HashiCorp Vault HTTP API."""

__version__ = "0.1.0"
