"""The offline platform ceremony: create, or recover from an archive, the platform's root key, no server.

The platform is the root namespace. :func:`initialize_platform` is ``strongroom platform init``: it creates
the 32-byte root key (an XChaCha20-Poly1305 key, like every root key), splits it k-of-n with Vault's Shamir
scheme, encrypts each share's hex text to one custodian's OpenPGP key (``gpg --decrypt FILE`` prints exactly
what ``vault``/``bao``/``strongroom operator unseal`` accept), optionally archives the whole key for a set of
PGP keys, and then writes, in ONE storage transaction, the seal configuration, the first keyring term, the
IAM signing key and the records ``setup`` adds (mount table, default policy). It creates no root token: the
platform operator gets one with the generate-root ceremony. :func:`recover_platform` is ``strongroom platform
recover``: with the archived key it re-seals the keyring under a NEW root key with new shares, in one
transaction, so a leaked (or lost) share set stops working and the old and new sets never combine.

Order, and what it guarantees:

1. the request is checked and the store is read: an initialised store (init) or an uninitialised one, a
   foreign or stale archive (recover) is refused before anything is generated or written;
2. the new key, shares and files are made in memory; the files are ciphertext only;
3. the :class:`Publisher` stores the files durably (the CLI: a new directory);
4. the storage transaction commits. If it fails, the publisher removes the files again.

So storage never holds a root key whose shares were not written out (which would lose the platform), and
a failed ceremony leaves no usable share behind. The root key exists only in memory, in ``SecretBytes``
objects dropped when the call returns; CPython cannot zero them (see :mod:`strongroom.crypto.secret`).

The verification digest is SHA-256 of :attr:`CeremonyResult.manifest`, a text of public facts only (see
``docs/operations/platform-ceremony.md``): ``sha256sum`` of the manifest file reproduces it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from strongroom.barrier.keyring import Keyring
from strongroom.clock import Clock
from strongroom.core.initialization import new_cluster_info
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.platform_archive import (
    ARCHIVE_FORMAT,
    MAX_ARCHIVE_BYTES,
    ArchivedKey,
    ArchiveMode,
    archive_message,
    parse_archive,
)
from strongroom.core.rekey import BACKUP_RECORD
from strongroom.core.seal import SealConfig
from strongroom.core.vault import Vault
from strongroom.crypto import pgp
from strongroom.crypto.aead import generate_key
from strongroom.crypto.kdf import sha256
from strongroom.crypto.random import random_uuid
from strongroom.crypto.secret import SecretBytes
from strongroom.crypto.shamir import split_key, validate_seal_config
from strongroom.errors import (
    AlreadyInitialized,
    CorruptRecord,
    DecryptionFailed,
    InvalidRequest,
    NotInitialized,
)
from strongroom.storage.base import Store, Transaction, transactional

__all__ = [
    "ARCHIVE_FORMAT", "IAM_SIGNING_KEY", "MANIFEST_HEADER", "MAX_ARCHIVE_BYTES", "ArchiveMode", "ArchivedKey",
    "CeremonyFile",
    "CeremonyRequest", "CeremonyResult", "IamKeyFactory", "PlatformSetup", "Publisher", "check_request",
    "initialize_platform", "parse_archive", "recover_platform",
]

MANIFEST_HEADER = "strongroom platform ceremony manifest v1"
IAM_SIGNING_KEY = ("iam", "signing-key")
"""Key of the IAM signing key inside the root namespace's ``sys`` area: a barrier record holding the key
as ``strongroom.auth.iam.signing.IamKey.to_bytes`` serialises it (docs/spec/storage-layout.md)."""
ARCHIVE_FILE = "root-key-archive.asc"

PlatformSetup = Callable[[Transaction, NamespaceKeys], Awaitable[None]]
"""Writes the platform's initial records (mount table, default policy) in the init transaction."""
IamKeyFactory = Callable[[], SecretBytes]
"""Returns a new serialised IAM signing key (the CLI passes ``IamKey.generate().to_bytes``: core does not
import auth)."""


@dataclass(frozen=True)
class CeremonyRequest:
    """What the operator asks for. PGP keys are armored blocks or base64 of binary keys."""

    secret_shares: int
    secret_threshold: int
    pgp_keys: tuple[str, ...]
    archive_keys: tuple[str, ...] = ()
    archive_mode: ArchiveMode | None = None


@dataclass(frozen=True)
class CeremonyFile:
    """One output file: an ASCII-armored OpenPGP message (ciphertext only).

    ``fingerprints``: the custodian of a share; for the archive, its recipients (mode ``all``: in the order
    they decrypt, outermost layer first).
    """

    name: str
    content: bytes
    kind: str
    fingerprints: tuple[str, ...]

    def __repr__(self) -> str:
        return f"CeremonyFile(name={self.name!r}, kind={self.kind!r}, fingerprints={self.fingerprints!r})"

    @property
    def sha256(self) -> str:
        """Lowercase hex SHA-256 of the file, as ``sha256sum`` prints it."""
        return sha256(self.content).hex()


@dataclass(frozen=True)
class CeremonyResult:
    """What a ceremony produced; every field is public (the files hold ciphertext only)."""

    operation: str
    ceremony_id: str
    cluster_id: str
    cluster_name: str
    config: SealConfig
    files: tuple[CeremonyFile, ...]
    archive_mode: ArchiveMode | None
    manifest: str

    @property
    def digest(self) -> str:
        """The verification digest: lowercase hex SHA-256 of :attr:`manifest` (UTF-8)."""
        return sha256(self.manifest.encode()).hex()

    @property
    def shares(self) -> tuple[CeremonyFile, ...]:
        """The custodians' files, share 1 first."""
        return tuple(f for f in self.files if f.kind == "share")

    @property
    def archive(self) -> CeremonyFile | None:
        """The archive file, if one was asked for."""
        return next((f for f in self.files if f.kind == "archive"), None)

    @property
    def archive_bypasses_threshold(self) -> bool:
        """Whether one person can open the archive alone (mode ``any``, or a single archive key)."""
        archive = self.archive
        return archive is not None and (self.archive_mode is ArchiveMode.ANY or len(archive.fingerprints) == 1)


class Publisher(Protocol):
    """Stores the ceremony's files before the storage commit, and removes them if the commit fails."""

    async def stage(self, files: Sequence[CeremonyFile]) -> None:
        """Store every file durably, or raise (then nothing is committed)."""
        ...

    async def discard(self) -> None:
        """Remove whatever :meth:`stage` stored (the commit failed)."""
        ...


@dataclass(frozen=True)
class _Keys:
    custodians: tuple[pgp.PgpPublicKey, ...]
    archive: tuple[pgp.PgpPublicKey, ...]
    mode: ArchiveMode | None


def check_request(request: CeremonyRequest) -> _Keys:
    """Validate share counts and parse every PGP key (the ceremonies call it first; callers may call it
    before opening a store, so that a bad request touches nothing).

    Raises:
        InvalidRequest: bad counts, a missing, duplicate or unusable key, or inconsistent archive options.
    """
    if not request.pgp_keys:
        raise InvalidRequest(
            "one custodian PGP key per share is required: the platform ceremony never writes shares in clear"
        )
    validate_seal_config(request.secret_shares, request.secret_threshold, pgp_key_count=len(request.pgp_keys))
    custodians = tuple(pgp.parse_public_key(k) for k in request.pgp_keys)
    _refuse_duplicates(custodians, "custodian PGP key", "one custodian would hold two shares")
    if request.archive_keys and request.archive_mode is None:
        raise InvalidRequest("archive keys need an explicit archive mode: all (every key needed) or any")
    if request.archive_mode is not None and not request.archive_keys:
        raise InvalidRequest("an archive mode was given without archive PGP keys")
    archive = tuple(pgp.parse_public_key(k) for k in request.archive_keys)
    _refuse_duplicates(archive, "archive PGP key", "the archive would need fewer people than listed")
    return _Keys(custodians, archive, request.archive_mode if archive else None)


def _config(request: CeremonyRequest, keys: _Keys) -> SealConfig:
    fingerprints = tuple(k.fingerprint for k in keys.custodians)
    return SealConfig("shamir", request.secret_shares, request.secret_threshold, fingerprints)


def _refuse_duplicates(keys: tuple[pgp.PgpPublicKey, ...], what: str, why: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key.fingerprint in seen:
            raise InvalidRequest(f"{what} {key.fingerprint} is given twice: {why}")
        seen.add(key.fingerprint)


def _make_files(
    root_key: SecretBytes, request: CeremonyRequest, keys: _Keys, cluster_id: str
) -> list[CeremonyFile]:
    """Split ``root_key`` and encrypt each share (and the archive) to its key(s)."""
    shares = split_key(root_key, request.secret_shares, request.secret_threshold)
    files = [
        # As Vault's pgp_keys: the plaintext is the share's lowercase hex text, what unseal accepts.
        CeremonyFile(
            f"share-{i}-{key.fingerprint}.asc",
            pgp.encrypt_armored(share.hex().encode("ascii"), [key]),
            "share",
            (key.fingerprint,),
        )
        for i, (share, key) in enumerate(zip(shares, keys.custodians, strict=True), start=1)
    ]
    if keys.archive:
        files.append(_archive_file(root_key, cluster_id, keys))
    return files


def _archive_file(root_key: SecretBytes, cluster_id: str, keys: _Keys) -> CeremonyFile:
    assert keys.mode is not None  # check_request: archive keys come with a mode
    message = archive_message(root_key, cluster_id, keys.archive, keys.mode)
    return CeremonyFile(ARCHIVE_FILE, message, "archive", tuple(k.fingerprint for k in keys.archive))


def _result(
    operation: str,
    cluster: dict[str, str],
    config: SealConfig,
    keyring: Keyring,
    keyring_blob: bytes,
    files: Sequence[CeremonyFile],
    mode: ArchiveMode | None,
) -> CeremonyResult:
    """Build the result and its manifest: the public facts the digest covers, one per line
    (format: docs/operations/platform-ceremony.md)."""
    ceremony_id = random_uuid()
    lines = [
        MANIFEST_HEADER,
        f"operation: {operation}",
        f"ceremony_id: {ceremony_id}",
        f"cluster_id: {cluster['cluster_id']}",
        f"cluster_name: {cluster['cluster_name']}",
        f"seal_type: {config.type}",
        f"secret_shares: {config.secret_shares}",
        f"secret_threshold: {config.secret_threshold}",
        f"keyring_generation: {keyring.generation}",
        f"keyring_terms: {','.join(str(t.number) for t in keyring.terms)}",
        # The sealed keyring is ciphertext that storage holds anyway: its hash reveals nothing.
        f"keyring_record_sha256: {sha256(keyring_blob).hex()}",
    ]
    shares = [f for f in files if f.kind == "share"]
    lines += [f"share {i}: {f.fingerprints[0]} {f.name} sha256:{f.sha256}" for i, f in enumerate(shares, 1)]
    lines.append(f"archive_mode: {mode.value if mode else 'none'}")
    for archive in (f for f in files if f.kind == "archive"):
        label = "archive_layer" if mode is ArchiveMode.ALL else "archive_recipient"
        lines += [f"{label} {i}: {fpr}" for i, fpr in enumerate(archive.fingerprints, 1)]
        lines.append(f"archive: {archive.name} sha256:{archive.sha256}")
    manifest = "\n".join(lines) + "\n"
    return CeremonyResult(
        operation, ceremony_id, cluster["cluster_id"], cluster["cluster_name"], config, tuple(files), mode, manifest
    )


async def _publish_and_commit(
    publisher: Publisher, files: Sequence[CeremonyFile], commit: Callable[[], Awaitable[Any]]
) -> Any:
    await publisher.stage(files)
    try:
        return await commit()
    except BaseException:
        # Shares of a key that storage does not hold are useless, and could be confused with real ones.
        await publisher.discard()
        raise


async def initialize_platform(
    store: Store,
    clock: Clock,
    request: CeremonyRequest,
    *,
    setup: PlatformSetup,
    new_iam_key: IamKeyFactory,
    publisher: Publisher,
) -> CeremonyResult:
    """Run the offline init ceremony on ``store`` (see the module docstring for the order of steps).

    Raises:
        InvalidRequest: bad counts or keys (nothing generated).
        AlreadyInitialized: the store's platform is initialised (nothing written, nothing published).
        CryptoError: PGP encryption failed. Anything ``publisher.stage`` or ``new_iam_key`` raises
            (nothing committed).
        StorageError: the store failed (the published files are discarded).
    """
    keys = check_request(request)
    vault = Vault(store, clock)
    if await vault.seal_config() is not None:
        raise _already_initialized()
    root_key = generate_key()
    cluster = new_cluster_info()
    config = _config(request, keys)
    files = _make_files(root_key, request, keys, cluster["cluster_id"])
    iam_key = new_iam_key()

    async def init(tx: Transaction) -> tuple[Keyring, bytes]:
        try:
            new = await vault.write_new_seal(tx, root_key, config, cluster)
        except AlreadyInitialized:
            raise _already_initialized() from None
        new.records(tx, "sys").put(IAM_SIGNING_KEY, iam_key.reveal())
        await setup(tx, new)
        blob = await tx.get(vault.keyring_key)
        assert blob is not None  # written above; read-your-writes
        return new.keyring, blob

    keyring, blob = await _publish_and_commit(publisher, files, lambda: transactional(store, init))
    return _result("init", cluster, config, keyring, blob, files, keys.mode)


def _already_initialized() -> AlreadyInitialized:
    return AlreadyInitialized(
        "the storage is already initialised: platform init runs once per store "
        "(replace the root key with `strongroom platform recover` or sys/rekey)"
    )


async def recover_platform(
    store: Store, clock: Clock, archived: ArchivedKey, request: CeremonyRequest, *, publisher: Publisher
) -> CeremonyResult:
    """Open the platform with an archived root key and immediately replace that key (one transaction).

    The keyring's terms are kept (every record stays readable); only its wrapping changes, with the seal
    configuration (new shares, threshold and custodians) and the removal of any rekey backup of the old
    shares. A node still unsealed with the old key seals itself at its next request (it can no longer open
    the stored keyring) and is unsealed again with the new shares.

    Raises:
        InvalidRequest: bad counts or keys; the archive belongs to another cluster, or its key no longer
            opens the keyring (the platform was rekeyed since the archive was made).
        NotInitialized: the store holds no platform.
        CorruptRecord: the stored seal configuration is not JSON.
        CryptoError, StorageError, publisher errors: as :func:`initialize_platform`.
    """
    keys = check_request(request)
    vault = Vault(store, clock)

    async def read(tx: Transaction) -> tuple[bytes | None, bytes | None]:
        return await tx.get(vault.space.key("seal")), await tx.get(vault.keyring_key)

    seal_raw, blob = await transactional(store, read)
    if seal_raw is None or blob is None:
        raise NotInitialized("the storage is not initialised: there is no platform to recover")
    try:
        doc = orjson.loads(seal_raw)
    except orjson.JSONDecodeError:
        raise CorruptRecord("malformed seal configuration") from None
    cluster = {"cluster_id": str(doc.get("cluster_id", "")), "cluster_name": str(doc.get("cluster_name", ""))}
    if doc.get("type", "shamir") != "shamir":
        raise InvalidRequest(f"platform recover needs a shamir seal; this store's seal is {doc.get('type')!r}")
    if archived.cluster_id != cluster["cluster_id"]:
        raise InvalidRequest(
            f"the archive belongs to cluster {archived.cluster_id}, this store to {cluster['cluster_id']}"
        )
    _open(archived.root_key, vault, blob)
    new_key = generate_key()
    config = _config(request, keys)
    files = _make_files(new_key, request, keys, cluster["cluster_id"])

    async def rewrap(tx: Transaction) -> tuple[Keyring, bytes]:
        stored = await tx.get(vault.keyring_key)
        if stored is None:
            raise NotInitialized("the storage is not initialised: there is no platform to recover")
        # Read again inside the transaction: a rotation committed meanwhile is kept, and a rekey
        # meanwhile makes the archived key fail here instead of being overwritten.
        keyring = _open(archived.root_key, vault, stored)
        sealed = keyring.seal(new_key, vault.keyring_key)
        tx.set(vault.keyring_key, sealed)
        await vault.update_config(tx, config)
        # Shares kept by an earlier `sys/rekey -backup` are shares of the replaced key: drop them.
        tx.clear(vault.space.key("sys", BACKUP_RECORD))
        return keyring, sealed

    keyring, sealed = await _publish_and_commit(publisher, files, lambda: transactional(store, rewrap))
    return _result("recover", cluster, config, keyring, sealed, files, keys.mode)


def _open(root_key: SecretBytes, vault: Vault, blob: bytes) -> Keyring:
    try:
        return Keyring.open(root_key, vault.keyring_key, blob)
    except DecryptionFailed:
        raise InvalidRequest(
            "the archived root key does not open this store's keyring: the platform was rekeyed after the "
            "archive was made (only the newest archive works)"
        ) from None
