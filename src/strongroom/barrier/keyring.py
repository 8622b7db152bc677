"""The keyring of one namespace: numbered barrier terms plus the purpose keys.

The keyring is the only record the root key encrypts (XChaCha20-Poly1305, AAD = the keyring's physical
key). It holds:

* the barrier **terms** (AES-256-GCM keys numbered from 1); the highest is active for new records, older
  ones stay for reading records written under them (``sys/rotate`` adds a term);
* the **blind-index key** (names -> physical keys) and the **token-hash key** (tokens -> physical keys),
  which are separate from the terms so that a rotation never moves a physical key;
* the **KEK** that wraps engine key material (transit), so a rekey of the root key touches only this
  record.

A :class:`Keyring` is immutable; :meth:`rotated` returns a new one. It has no secret ``repr`` and refuses
pickling (via :class:`~strongroom.crypto.secret.SecretBytes`); the only way out in clear is
:meth:`seal`, which encrypts it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from strongroom.crypto.aead import XChaCha20Poly1305, generate_key
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import CorruptRecord, DecryptionFailed

KEYRING_FORMAT = 1


@dataclass(frozen=True)
class Term:
    """One barrier term: its number, key and installation time (seconds since the epoch)."""

    number: int
    key: SecretBytes
    install_time: float

    def __repr__(self) -> str:
        return f"Term(number={self.number}, install_time={self.install_time})"


@dataclass(frozen=True)
class Keyring:
    """The keys of one namespace. See the module docstring for what each key protects."""

    terms: tuple[Term, ...]
    blind_key: SecretBytes
    token_key: SecretBytes
    kek: SecretBytes
    generation: int = 1

    def __repr__(self) -> str:
        return f"Keyring(active_term={self.active.number}, terms={len(self.terms)}, generation={self.generation})"

    @classmethod
    def generate(cls, now: float) -> Keyring:
        """Create a fresh keyring with term 1 and new purpose keys."""
        return cls(
            terms=(Term(1, generate_key(), now),),
            blind_key=generate_key(),
            token_key=generate_key(),
            kek=generate_key(),
        )

    @property
    def active(self) -> Term:
        """The term that encrypts new records (the highest number)."""
        return self.terms[-1]

    def term(self, number: int) -> Term | None:
        """Return term ``number`` or ``None`` if this keyring does not have it."""
        for t in self.terms:
            if t.number == number:
                return t
        return None

    def rotated(self, now: float) -> Keyring:
        """Return a keyring with one more term, which becomes active."""
        new = Term(self.active.number + 1, generate_key(), now)
        return Keyring((*self.terms, new), self.blind_key, self.token_key, self.kek, self.generation + 1)

    def retired(self, below: int) -> Keyring:
        """Return a keyring without the terms numbered below ``below`` (the next generation).

        Only for the re-wrap job (``core/rewrap.py``), once no stored record names those terms any more:
        a record under a dropped term can never be decrypted again. The active term always stays.
        """
        kept = tuple(t for t in self.terms if t.number >= min(below, self.active.number))
        return Keyring(kept, self.blind_key, self.token_key, self.kek, self.generation + 1)

    def seal(self, root_key: SecretBytes, physical_key: bytes) -> bytes:
        """Serialise and encrypt the keyring under ``root_key``, bound to ``physical_key``."""
        doc = {
            "format": KEYRING_FORMAT,
            "generation": self.generation,
            "terms": [
                {"n": t.number, "k": _b64(t.key), "t": t.install_time} for t in self.terms
            ],
            "blind": _b64(self.blind_key),
            "token": _b64(self.token_key),
            "kek": _b64(self.kek),
        }
        plaintext = orjson.dumps(doc)
        return XChaCha20Poly1305(root_key).encrypt(plaintext, physical_key)

    @classmethod
    def open(cls, root_key: SecretBytes, physical_key: bytes, blob: bytes) -> Keyring:
        """Decrypt a sealed keyring.

        Raises:
            DecryptionFailed: ``root_key`` is not the key that sealed it (or the record was altered).
            CorruptRecord: the record decrypted but is not a keyring this version understands.
        """
        plaintext = XChaCha20Poly1305(root_key).decrypt(blob, physical_key)
        try:
            doc = orjson.loads(plaintext)
            if doc["format"] != KEYRING_FORMAT:
                raise CorruptRecord("keyring format is not supported by this server")
            terms = tuple(
                Term(int(t["n"]), _unb64(t["k"]), float(t["t"])) for t in doc["terms"]
            )
            return cls(
                terms=terms,
                blind_key=_unb64(doc["blind"]),
                token_key=_unb64(doc["token"]),
                kek=_unb64(doc["kek"]),
                generation=int(doc["generation"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord("keyring record is malformed") from exc


def _b64(key: SecretBytes) -> str:
    return base64.b64encode(key.reveal()).decode()


def _unb64(text: str) -> SecretBytes:
    return SecretBytes(base64.b64decode(text))


__all__ = ["DecryptionFailed", "Keyring", "Term"]
