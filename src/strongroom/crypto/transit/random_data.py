"""Random bytes for transit's ``random`` and ``datakey`` endpoints, and their text encodings.

Every byte comes from the operating system's CSPRNG (:func:`strongroom.crypto.random.random_bytes`).
Vault's ``random`` endpoint also names the sources ``seal`` and ``all`` (entropy augmentation from an
HSM); this server has no entropy augmentation, so all sources draw from the same CSPRNG and the engine
says so in a warning where OpenBao does.
"""

from __future__ import annotations

import binascii

from strongroom.crypto.random import random_bytes

MAX_RANDOM_BYTES = 128 * 1024
"""OpenBao's ``APIMaxBytes``: the most bytes one ``random`` call returns."""

FORMATS = ("hex", "base64")
"""The text encodings ``random`` and ``hash`` accept."""

DATA_KEY_BYTES = {128: 16, 256: 32, 512: 64}
"""``datakey`` sizes: bits -> bytes (Vault accepts exactly these three)."""


def generate(n: int) -> bytes:
    """Return ``n`` random bytes from the OS CSPRNG.

    Raises:
        ValueError: ``n`` is negative.
    """
    return random_bytes(n)


def data_key(bits: int) -> bytes:
    """Return a fresh data key of ``bits`` bits (128, 256 or 512).

    Raises:
        KeyError: another bit length (the engine words Vault's refusal).
    """
    return random_bytes(DATA_KEY_BYTES[bits])


def encode(data: bytes, fmt: str) -> str:
    """Return ``data`` as lowercase hex or standard padded base64 (``fmt`` is one of :data:`FORMATS`).

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "hex":
        return data.hex()
    if fmt == "base64":
        return binascii.b2a_base64(data, newline=False).decode()
    raise ValueError(f"unknown encoding format {fmt!r}")
