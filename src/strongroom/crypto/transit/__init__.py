"""Transit cryptography: key types, key material, and the Vault-compatible operations on them.

Only this package (inside :mod:`strongroom.crypto`) touches the primitives transit needs; the engine in
:mod:`strongroom.engines.transit` handles requests, policy and storage and calls in here.
"""
