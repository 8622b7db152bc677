"""PGP encryption of key shares, checked by decrypting with real GnuPG."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from strongroom.crypto import pgp
from strongroom.errors import InvalidRequest
from tests.support.gpg import Gpg, GpgKey, gpg_home


@dataclass(frozen=True)
class Keys:
    gpg: Gpg
    ed25519: GpgKey
    rsa: GpgKey
    sign_only: GpgKey


@pytest.fixture(scope="module")
def keys() -> Iterator[Keys]:
    with gpg_home() as gpg:
        yield Keys(
            gpg,
            ed25519=gpg.generate("Alice <alice@example.invalid>", "ed25519", "cv25519"),
            rsa=gpg.generate("Bob <bob@example.invalid>", "rsa3072", "rsa3072"),
            sign_only=gpg.generate("Carol <carol@example.invalid>", "ed25519", None),
        )


SHARE = bytes.fromhex("436a2cd8414145cea98c40cbe0269d537da29f3620b151f35a310c1f0e2243404f")


@pytest.mark.parametrize("which", ["ed25519", "rsa"])
def test_share_decrypts_with_gpg_to_its_hex_text(keys: Keys, which: str) -> None:
    key: GpgKey = getattr(keys, which)
    messages, fingerprints = pgp.encrypt_shares([SHARE], [key.vault_entry])
    assert fingerprints == [key.fingerprint.lower()]
    message = messages[0]
    assert message[0] & 0x80, "binary OpenPGP packet, not ASCII armor"
    assert not message.startswith(b"-----BEGIN")
    assert keys.gpg.decrypt(message) == SHARE.hex().encode()


def test_several_shares_keep_their_order(keys: Keys) -> None:
    shares = [SHARE, bytes(reversed(SHARE))]
    entries = [keys.rsa.vault_entry, keys.ed25519.vault_entry]
    messages, fingerprints = pgp.encrypt_shares(shares, entries)
    assert fingerprints == [keys.rsa.fingerprint.lower(), keys.ed25519.fingerprint.lower()]
    assert [keys.gpg.decrypt(m) for m in messages] == [s.hex().encode() for s in shares]
    assert messages[0] != messages[1]


def test_armored_keys_and_wrapped_base64_are_accepted(keys: Keys) -> None:
    armored = keys.gpg.run("--armor", "--export", keys.ed25519.fingerprint).decode()
    assert pgp.parse_public_key(armored).fingerprint == keys.ed25519.fingerprint.lower()
    wrapped = "\n".join(keys.rsa.vault_entry[i : i + 64] for i in range(0, len(keys.rsa.vault_entry), 64))
    parsed = pgp.parse_public_key(wrapped + "\n")
    assert parsed.fingerprint == keys.rsa.fingerprint.lower()
    assert keys.gpg.decrypt(pgp.encrypt(b"payload", parsed)) == b"payload"


def test_fingerprint_format_and_repr(keys: Keys) -> None:
    key = pgp.parse_public_key(keys.ed25519.vault_entry)
    assert len(key.fingerprint) == 40
    assert key.fingerprint == key.fingerprint.lower()
    assert int(key.fingerprint, 16) == int(keys.ed25519.fingerprint, 16)
    assert repr(key) == f"PgpPublicKey(fingerprint={key.fingerprint!r})"


def test_sign_only_key_is_refused(keys: Keys) -> None:
    with pytest.raises(InvalidRequest, match="cannot be used for encryption") as info:
        pgp.parse_public_key(keys.sign_only.vault_entry)
    assert keys.sign_only.fingerprint.lower() in info.value.message


def test_secret_keys_are_refused(keys: Keys) -> None:
    fpr = keys.ed25519.fingerprint
    export = ("--passphrase", "", "--pinentry-mode", "loopback")
    secret_binary = keys.gpg.run(*export, "--export-secret-keys", fpr)
    secret_armored = keys.gpg.run(*export, "--armor", "--export-secret-keys", fpr).decode()
    # Disguised: secret packets inside a block labelled public must be caught by the packet scan too.
    disguised = secret_armored.replace("PRIVATE KEY BLOCK", "PUBLIC KEY BLOCK")
    public_then_secret_subkey = keys.ed25519.binary + secret_binary
    entries = [base64.b64encode(secret_binary).decode(), secret_armored, disguised]
    entries.append(base64.b64encode(public_then_secret_subkey).decode())
    for entry in entries:
        with pytest.raises(InvalidRequest, match="secret key"):
            pgp.parse_public_key(entry)


def test_keyring_of_several_keys_is_refused(keys: Keys) -> None:
    keyring = keys.ed25519.binary + keys.rsa.binary
    with pytest.raises(InvalidRequest, match="more than one key"):
        pgp.parse_public_key(base64.b64encode(keyring).decode())


def test_parser_errors_carry_no_backtrace() -> None:
    # Framing is fine (one public-key packet) but its version byte is 9: sequoia rejects it.
    body = b"\x09" + b"\x00" * 8
    with pytest.raises(InvalidRequest, match="error parsing given PGP key") as info:
        pgp.parse_public_key(base64.b64encode(bytes([0xC6, len(body)]) + body).decode())
    assert "\n" not in info.value.message, "no Rust backtrace in client messages"


def test_count_mismatch(keys: Keys) -> None:
    expected = "mismatch between number items to encrypt and number of PGP keys"
    with pytest.raises(InvalidRequest, match=expected):
        pgp.encrypt_shares([SHARE, SHARE], [keys.rsa.vault_entry])


def test_a_bad_key_fails_before_anything_is_encrypted(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []

    def spy(data: bytes, key: pgp.PgpPublicKey) -> bytes:
        calls.append(data)
        return b""

    monkeypatch.setattr(pgp, "encrypt", spy)
    with pytest.raises(InvalidRequest):
        pgp.encrypt_shares([SHARE, SHARE], [keys.rsa.vault_entry, "not a key"])
    assert calls == []


# --- no gpg needed --------------------------------------------------------------------------------------


def test_keybase_entries_are_rejected_clearly() -> None:
    with pytest.raises(InvalidRequest, match="keybase") as info:
        pgp.parse_public_key("keybase:someone")
    assert "not supported" in info.value.message


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("!!!not base64!!!", "error decoding given PGP key: not valid base64"),
        ("", "error parsing given PGP key: not an OpenPGP public key"),
        (base64.b64encode(b"hello world, I am not a key").decode(), "not an OpenPGP public key"),
        # A public-key packet header followed by garbage: passes the tag check, fails in the parser.
        (base64.b64encode(b"\x99\x00\x05garbage").decode(), "error parsing given PGP key"),
        (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n-----END PGP PUBLIC KEY BLOCK-----\n",
            "error parsing given PGP key",
        ),
    ],
)
def test_garbage_is_an_invalid_request(entry: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        pgp.parse_public_key(entry)
    if entry:
        assert entry not in info.value.message


@pytest.mark.parametrize(
    ("data", "tags"),
    [
        (b"", []),
        (bytes([0x98, 2]) + b"ab", [6]),  # old format, 1-octet length
        (bytes([0x99, 0, 2]) + b"ab" + bytes([0xB4, 1]) + b"u", [6, 13]),  # 2-octet length, then a user id
        (bytes([0x9A, 0, 0, 0, 1]) + b"a", [6]),  # 4-octet length
        (bytes([0xC6, 1]) + b"a" + bytes([0xC7, 0]), [6, 7]),  # new format; secret subkey
        (bytes([0xC6, 192, 0]) + b"a" * 192, [6]),  # new format, 2-octet length
        (bytes([0xC5, 255, 0, 0, 0, 2]) + b"ab", [5]),  # new format, 5-octet length
        (bytes([0x9B]) + b"abc", None),  # old format, indeterminate length
        (bytes([0xC6, 224]) + b"a", None),  # partial body length
        (bytes([0x98, 5]) + b"ab", None),  # truncated body
        (bytes([0xC6]), None),  # truncated header
        (b"\x06abc", None),  # not a packet header
    ],
)
def test_packet_framing(data: bytes, tags: list[int] | None) -> None:
    assert pgp._packet_tags(data) == tags
