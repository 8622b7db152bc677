"""strongroom.crypto: the only package that calls cryptographic primitives.

Everything else in strongroom reaches ``cryptography``, PyNaCl, pysequoia, ``hmac`` and ``secrets`` through
these modules, so the set of algorithms, their parameters and the handling of key material can be reviewed
in one place. This package imports nothing from strongroom except ``strongroom.errors``.

Modules:

- ``secret``: :class:`SecretBytes` (no secret repr, no pickling, constant-time equality; key material
  leaves it only through ``reveal()``) and ``constant_time_equal``.
- ``random``: CSPRNG bytes, unbiased base62 strings, UUIDs.
- ``aead``: the :class:`Aead` protocol, ``AesGcm`` and ``XChaCha20Poly1305``; nonces are generated inside,
  output is ``nonce || ciphertext || tag``, every failure is the one ``DecryptionFailed``.
- ``shamir``: Vault/OpenBao-compatible Shamir sharing over GF(2^8) and Vault's seal-configuration rules.
- ``pgp``: encryption of key shares to OpenPGP public keys, as Vault's ``pgp_keys`` do.
- ``kdf``: HKDF-SHA256, HMAC-SHA256, blind indexes and token hashes.

Guarantees shared by all modules: no key material in any ``repr``, exception message or log line; objects
holding keys refuse pickling; errors are the classes of ``strongroom.errors`` (plus ``ValueError`` and
``TypeError`` for programming mistakes such as a wrong key length).
"""
