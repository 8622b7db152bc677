"""Google Tink's HashiCorp Vault integration (PyPI ``tink``) envelope-encrypts through a real strongroom process.

``tink.integration.hcvault.new_aead("transit/keys/NAME", hvac_client)`` is Tink's remote AEAD. It calls
``transit/encrypt`` and ``transit/decrypt`` through hvac, with an empty context. ``KmsEnvelopeAead`` makes
a fresh AES-256-GCM data key for each message, encrypts the message with it, and stores the data key as
the ciphertext the remote AEAD returned. The output is ``len(encrypted DEK) || encrypted DEK || payload``.
Decryption must give the message back. It must fail, with Tink's error, when the payload or the wrapped
data key is changed, when the associated data differs, and when another transit key is asked to unwrap.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
import tink
from tink import aead
from tink.integration import hcvault

from tests.support.server import ServerProcess, start_strongroom

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    work: Path = tmp_path_factory.mktemp("transit-tink")
    process = start_strongroom(["--dev", "--dev-root-token-id", "root", "--storage", "memory://"], work)
    try:
        client = hvac.Client(url=process.addr, token="root")
        client.sys.enable_secrets_engine("transit", path="transit")
        client.secrets.transit.create_key("tink-kek")
        client.secrets.transit.create_key("other-kek", key_type="chacha20-poly1305")
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
def envelope(server: ServerProcess) -> aead.Aead:
    aead.register()
    remote = hcvault.new_aead("transit/keys/tink-kek", hvac.Client(url=server.addr, token="root"))
    return aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, remote)


def _wrapped_dek(ciphertext: bytes) -> tuple[bytes, bytes]:
    (length,) = struct.unpack(">I", ciphertext[:4])
    return ciphertext[4:4 + length], ciphertext[4 + length:]


def test_envelope_round_trip(envelope: aead.Aead) -> None:
    for message in (b"", b"hello tink", bytes(range(256)) * 40):
        ciphertext = envelope.encrypt(message, b"row-1")
        assert envelope.decrypt(ciphertext, b"row-1") == message
    dek, _ = _wrapped_dek(envelope.encrypt(b"x", b""))
    # The wrapped data key is a transit ciphertext of the serialized DEK, as strongroom returned it.
    assert dek.startswith(b"vault:v1:")


def test_each_message_gets_its_own_data_key(envelope: aead.Aead) -> None:
    first, _ = _wrapped_dek(envelope.encrypt(b"same", b""))
    second, _ = _wrapped_dek(envelope.encrypt(b"same", b""))
    assert first != second


def test_tampering_fails(envelope: aead.Aead) -> None:
    ciphertext = bytearray(envelope.encrypt(b"do not touch", b"ad"))
    payload_byte = len(ciphertext) - 1
    ciphertext[payload_byte] ^= 1
    with pytest.raises(tink.TinkError):
        envelope.decrypt(bytes(ciphertext), b"ad")

    good = envelope.encrypt(b"do not touch", b"ad")
    with pytest.raises(tink.TinkError):
        envelope.decrypt(good, b"other ad")

    dek, payload = _wrapped_dek(good)
    prefix, blob = dek.rsplit(b":", 1)
    flipped = blob[:10] + (b"A" if blob[10:11] != b"A" else b"B") + blob[11:]  # still base64: the server must refuse it
    bad_dek = prefix + b":" + flipped
    with pytest.raises(tink.TinkError, match="message authentication failed"):
        envelope.decrypt(struct.pack(">I", len(bad_dek)) + bad_dek + payload, b"ad")


def test_another_key_cannot_unwrap(server: ServerProcess, envelope: aead.Aead) -> None:
    ciphertext = envelope.encrypt(b"for tink-kek only", b"")
    other = aead.KmsEnvelopeAead(
        aead.aead_key_templates.AES256_GCM,
        hcvault.new_aead("transit/keys/other-kek", hvac.Client(url=server.addr, token="root")),
    )
    with pytest.raises(tink.TinkError):
        other.decrypt(ciphertext, b"")
    assert other.decrypt(other.encrypt(b"its own", b""), b"") == b"its own"
