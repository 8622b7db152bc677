"""The offline platform ceremony below the CLI: init, archives, recover, refusals (real gpg decrypts)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from strongroom.auth.iam.signing import IamKey
from strongroom.clock import FakeClock
from strongroom.core.initialization import InitRequest
from strongroom.core.namespace import NamespaceKeys
from strongroom.core.platform import (
    ARCHIVE_FORMAT,
    IAM_SIGNING_KEY,
    ArchivedKey,
    ArchiveMode,
    CeremonyFile,
    CeremonyRequest,
    CeremonyResult,
    initialize_platform,
    parse_archive,
    recover_platform,
)
from strongroom.core.rekey import BACKUP_RECORD
from strongroom.core.vault import Vault
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import AlreadyInitialized, InvalidRequest, InvalidShare, NotInitialized, Sealed
from strongroom.storage.base import Store, Transaction, transactional
from strongroom.storage.memory import MemoryStore
from tests.support.gpg import Gpg, GpgKey, gpg_home


@dataclass(frozen=True)
class Custodian:
    gpg: Gpg
    key: GpgKey

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint.lower()

    def decrypt(self, message: bytes) -> bytes:
        return self.gpg.decrypt(message)

    def cannot_decrypt(self, message: bytes) -> bool:
        try:
            self.gpg.decrypt(message)
        except AssertionError:
            return True
        return False


@pytest.fixture(scope="module")
def people() -> Iterator[list[Custodian]]:
    """Three custodians, each with their own GnuPG home (so each holds only their own secret key)."""
    with gpg_home() as a, gpg_home() as b, gpg_home() as c:
        yield [
            Custodian(home, home.generate(f"{name} <{name}@example.invalid>"))
            for home, name in ((a, "alice"), (b, "bob"), (c, "carol"))
        ]


@dataclass
class Recorder:
    """A publisher that keeps the files in memory; can fail, or run something before the commit."""

    fail: bool = False
    before_commit: object = None
    staged: list[CeremonyFile] = field(default_factory=list)
    discarded: bool = False

    async def stage(self, files: Sequence[CeremonyFile]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.staged = list(files)
        if callable(self.before_commit):
            await self.before_commit()

    async def discard(self) -> None:
        self.discarded = True
        self.staged = []


async def _setup(tx: Transaction, keys: NamespaceKeys) -> None:
    keys.records(tx, "sys").put_json(("marker",), {"written": "at init"})


def _iam() -> SecretBytes:
    return IamKey.generate().to_bytes()


async def _dump(store: Store) -> list[tuple[bytes, bytes]]:
    async def read(tx: Transaction) -> list[tuple[bytes, bytes]]:
        return await tx.range(b"", b"\xff")

    return await transactional(store, read)


def _request(
    people: list[Custodian],
    shares: int = 3,
    threshold: int = 2,
    archive_keys: tuple[str, ...] = (),
    archive_mode: ArchiveMode | None = None,
) -> CeremonyRequest:
    pgp_keys = tuple(p.key.vault_entry for p in people[:shares])
    return CeremonyRequest(shares, threshold, pgp_keys, archive_keys, archive_mode)


async def _init(
    people: list[Custodian], archive_keys: tuple[str, ...] = (), archive_mode: ArchiveMode | None = None
) -> tuple[Store, CeremonyResult, Recorder]:
    store, publisher = MemoryStore(), Recorder()
    request = _request(people, archive_keys=archive_keys, archive_mode=archive_mode)
    result = await initialize_platform(store, FakeClock(), request, setup=_setup, new_iam_key=_iam, publisher=publisher)
    return store, result, publisher


def _hex_shares(people: list[Custodian], result: CeremonyResult) -> list[str]:
    by_fpr = {p.fingerprint: p for p in people}
    return [by_fpr[f.fingerprints[0]].decrypt(f.content).decode() for f in result.shares]


async def _unseal(store: Store, shares: Sequence[str]) -> Vault:
    vault = Vault(store, FakeClock())
    for share in shares:
        await vault.submit_unseal(share)
    return vault


async def test_init_writes_the_platform_and_k_decrypted_shares_unseal_it(people: list[Custodian]) -> None:
    store, result, publisher = await _init(people)
    assert publisher.staged == list(result.files) and not publisher.discarded
    hex_shares = _hex_shares(people, result)
    assert all(len(bytes.fromhex(s)) == 33 for s in hex_shares)  # what `gpg -d` prints is Vault's hex share
    assert (await _unseal(store, hex_shares[:1])).sealed
    vault = await _unseal(store, [hex_shares[2], hex_shares[0]])
    assert not vault.sealed and vault.keys is not None
    keys = vault.keys
    config = await vault.seal_config()
    assert config is not None and (config.secret_shares, config.secret_threshold) == (3, 2)
    assert config.pgp_fingerprints == tuple(p.fingerprint for p in people)
    assert (await vault.cluster_info())["cluster_id"] == result.cluster_id

    async def read(tx: Transaction) -> tuple[bytes | None, object, int]:
        sys_area = keys.records(tx, "sys")
        tokens = await keys.records(tx, "tok").range()
        return await sys_area.get(*IAM_SIGNING_KEY), await sys_area.get_json("marker"), len(tokens)

    iam_key, marker, tokens = await transactional(store, read)
    assert iam_key is not None and IamKey.from_bytes(iam_key).key_id == 1  # what the IAM module loads
    assert marker == {"written": "at init"}
    assert tokens == 0  # no root token: the operator makes one with generate-root


async def test_the_manifest_digest_covers_public_facts_only(people: list[Custodian]) -> None:
    store, result, _ = await _init(people)
    assert result.digest == hashlib.sha256(result.manifest.encode()).hexdigest()
    lines = result.manifest.splitlines()
    assert lines[0] == "strongroom platform ceremony manifest v1"
    assert f"cluster_id: {result.cluster_id}" in lines and "secret_threshold: 2" in lines
    for i, (person, item) in enumerate(zip(people, result.shares, strict=True), 1):
        digest = hashlib.sha256(item.content).hexdigest()
        assert f"share {i}: {person.fingerprint} {item.name} sha256:{digest}" in lines
    keyring_blob = dict(await _dump(store))[Vault(store, FakeClock()).keyring_key]
    assert f"keyring_record_sha256: {hashlib.sha256(keyring_blob).hexdigest()}" in lines
    for share in _hex_shares(people, result):
        assert share not in result.manifest and share not in repr(result)


async def test_a_keyring_from_another_ceremony_changes_the_digest(people: list[Custodian]) -> None:
    _, first, _ = await _init(people)
    _, second, _ = await _init(people)
    assert first.digest != second.digest


async def test_an_initialised_store_is_refused_before_anything_is_made(people: list[Custodian]) -> None:
    store, _, _ = await _init(people)
    before = await _dump(store)
    publisher = Recorder()
    with pytest.raises(AlreadyInitialized, match="already initialised"):
        await initialize_platform(store, FakeClock(), _request(people), setup=_setup, new_iam_key=_iam, publisher=publisher)
    assert publisher.staged == [] and await _dump(store) == before


async def test_a_store_initialised_during_the_ceremony_discards_the_files(people: list[Custodian]) -> None:
    store = MemoryStore()

    async def race() -> None:
        async def setup(tx: Transaction, keys: NamespaceKeys) -> str:
            return "token"

        await Vault(store, FakeClock()).initialize(InitRequest(1, 1), setup)

    publisher = Recorder(before_commit=race)
    with pytest.raises(AlreadyInitialized):
        await initialize_platform(store, FakeClock(), _request(people), setup=_setup, new_iam_key=_iam, publisher=publisher)
    assert publisher.discarded and publisher.staged == []


async def test_files_that_cannot_be_written_leave_the_store_uninitialised(people: list[Custodian]) -> None:
    store = MemoryStore()
    with pytest.raises(OSError, match="disk full"):
        await initialize_platform(store, FakeClock(), _request(people), setup=_setup, new_iam_key=_iam, publisher=Recorder(fail=True))
    assert await Vault(store, FakeClock()).seal_config() is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pgp_keys": ()}, "one custodian PGP key per share is required"),
        ({"secret_shares": 2}, "PGP keys"),
        ({"secret_threshold": 4}, "threshold"),
        ({"duplicate": True}, "is given twice: one custodian would hold two shares"),
        ({"archive_keys": "one"}, "explicit archive mode"),
        ({"archive_mode": ArchiveMode.ALL}, "archive mode was given without archive PGP keys"),
        ({"archive_keys": "same-twice", "archive_mode": ArchiveMode.ALL}, "archive PGP key .* is given twice"),
        ({"pgp_keys": ("keybase:someone", "a", "b")}, "keybase"),
    ],
)
async def test_bad_requests_are_refused_before_anything_is_made(
    people: list[Custodian], change: dict[str, object], message: str
) -> None:
    base = _request(people)
    fields: dict[str, object] = {
        "secret_shares": base.secret_shares,
        "secret_threshold": base.secret_threshold,
        "pgp_keys": base.pgp_keys,
    }
    if change.pop("duplicate", False):
        fields["pgp_keys"] = (base.pgp_keys[0], base.pgp_keys[1], base.pgp_keys[0])
    archive = change.pop("archive_keys", None)
    if archive == "one":
        fields["archive_keys"] = (base.pgp_keys[0],)
    elif archive == "same-twice":
        fields["archive_keys"] = (base.pgp_keys[0], base.pgp_keys[0])
    fields.update(change)
    store, publisher = MemoryStore(), Recorder()
    with pytest.raises(InvalidRequest, match=message):
        await initialize_platform(
            store, FakeClock(), CeremonyRequest(**fields), setup=_setup, new_iam_key=_iam, publisher=publisher  # type: ignore[arg-type]
        )
    assert publisher.staged == [] and await _dump(store) == []


async def test_a_secret_key_is_refused(people: list[Custodian]) -> None:
    import base64

    secret = people[0].gpg.run("--export-secret-keys", people[0].key.fingerprint)
    request = CeremonyRequest(1, 1, (base64.b64encode(secret).decode(),))
    with pytest.raises(InvalidRequest, match="secret key"):
        await initialize_platform(MemoryStore(), FakeClock(), request, setup=_setup, new_iam_key=_iam, publisher=Recorder())


async def _archive_opens(store: Store, plaintext: bytes) -> bool:
    archived = parse_archive(plaintext)
    await Vault(store, FakeClock()).load_keys(archived.root_key)  # raises unless it opens the keyring
    return True


async def test_archive_mode_any_lets_each_recipient_alone_open_the_key(people: list[Custodian]) -> None:
    alice, bob, carol = people
    store, result, _ = await _init(
        people, archive_keys=(alice.key.vault_entry, bob.key.vault_entry), archive_mode=ArchiveMode.ANY
    )
    archive = result.archive
    assert archive is not None and result.archive_bypasses_threshold
    assert archive.fingerprints == (alice.fingerprint, bob.fingerprint)
    assert await _archive_opens(store, alice.decrypt(archive.content))
    assert await _archive_opens(store, bob.decrypt(archive.content))
    assert carol.cannot_decrypt(archive.content)
    assert "archive_mode: any" in result.manifest and f"archive_recipient 2: {bob.fingerprint}" in result.manifest


async def test_archive_mode_all_needs_every_key_in_order(people: list[Custodian]) -> None:
    alice, bob, carol = people
    store, result, _ = await _init(
        people, archive_keys=(alice.key.vault_entry, bob.key.vault_entry), archive_mode=ArchiveMode.ALL
    )
    archive = result.archive
    assert archive is not None and not result.archive_bypasses_threshold
    assert bob.cannot_decrypt(archive.content) and carol.cannot_decrypt(archive.content)
    layer = alice.decrypt(archive.content)
    assert layer.startswith(b"-----BEGIN PGP MESSAGE-----")  # alice alone gets only ciphertext
    with pytest.raises(InvalidRequest, match="still PGP-encrypted"):
        parse_archive(layer)
    assert alice.cannot_decrypt(layer) and carol.cannot_decrypt(layer)
    assert await _archive_opens(store, bob.decrypt(layer))
    assert f"archive_layer 1: {alice.fingerprint}" in result.manifest


async def test_a_single_archive_key_is_flagged_as_bypassing_the_threshold(people: list[Custodian]) -> None:
    _, result, _ = await _init(people, archive_keys=(people[0].key.vault_entry,), archive_mode=ArchiveMode.ALL)
    assert result.archive_bypasses_threshold


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"-----BEGIN PGP MESSAGE-----\n\nabc\n", "still PGP-encrypted"),
        (b"\x85\x01\x0c", "still PGP-encrypted"),
        (b"not json", "not a decrypted"),
        (b'{"format": "other", "cluster_id": "x", "root_key": "00"}', "not a decrypted"),
        (b'{"format": "%s", "cluster_id": "x", "root_key": "zz"}' % ARCHIVE_FORMAT.encode(), "not a decrypted"),
        (b'{"format": "%s", "cluster_id": "x", "root_key": "0011"}' % ARCHIVE_FORMAT.encode(), "32 bytes"),
        (b" " * (64 * 1024 + 1), "too large"),
    ],
)
def test_bad_archives_are_refused_without_echoing_them(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        parse_archive(data)
    assert "0011" not in caught.value.message


async def test_recover_replaces_the_key_and_every_share(people: list[Custodian]) -> None:
    alice, bob, carol = people
    store, first, _ = await _init(people, archive_keys=(alice.key.vault_entry,), archive_mode=ArchiveMode.ALL)
    old_shares = _hex_shares(people, first)
    running = await _unseal(store, old_shares[:2])  # a node left unsealed with the old key
    assert running.keys is not None
    old_keys = running.keys

    async def before(tx: Transaction) -> bytes | None:
        old_keys.records(tx, "sys").put_json((BACKUP_RECORD,), {"keys": {"x": ["old"]}})
        return await old_keys.records(tx, "sys").get(*IAM_SIGNING_KEY)

    iam_key = await transactional(store, before)
    archive = first.archive
    assert archive is not None
    archived = parse_archive(alice.decrypt(archive.content))
    publisher = Recorder()
    new_request = CeremonyRequest(2, 2, (bob.key.vault_entry, carol.key.vault_entry))
    second = await recover_platform(store, FakeClock(), archived, new_request, publisher=publisher)
    assert second.operation == "recover" and second.cluster_id == first.cluster_id
    assert publisher.staged == list(second.files) and second.archive is None

    with pytest.raises(InvalidShare):  # the old shares no longer open the keyring
        await _unseal(store, old_shares[:2])
    with pytest.raises(InvalidShare):
        await _unseal(store, [old_shares[2], old_shares[0]])
    new_shares = _hex_shares(people, second)
    vault = await _unseal(store, new_shares)
    assert not vault.sealed and vault.keys is not None
    keys = vault.keys
    config = await vault.seal_config()
    assert config is not None and config.pgp_fingerprints == (bob.fingerprint, carol.fingerprint)

    async def after(tx: Transaction) -> tuple[object, bytes | None, bytes | None]:
        area = keys.records(tx, "sys")
        return await area.get_json("marker"), await area.get(*IAM_SIGNING_KEY), await area.get(BACKUP_RECORD)

    assert await transactional(store, after) == ({"written": "at init"}, iam_key, None)

    async def request_on_running_node(tx: Transaction) -> NamespaceKeys:
        return await running.current_keys(tx)

    with pytest.raises(Sealed):  # the node still holding the old key seals itself
        await transactional(store, request_on_running_node)
    assert running.sealed

    # The old archive holds the replaced key: it is refused, and nothing is published or changed.
    before_dump, publisher = await _dump(store), Recorder()
    with pytest.raises(InvalidRequest, match="rekeyed after the archive was made"):
        await recover_platform(store, FakeClock(), archived, new_request, publisher=publisher)
    assert publisher.staged == [] and await _dump(store) == before_dump


async def test_recover_writes_a_new_archive_when_asked(people: list[Custodian]) -> None:
    alice, bob, _ = people
    store, first, _ = await _init(people, archive_keys=(alice.key.vault_entry,), archive_mode=ArchiveMode.ALL)
    assert first.archive is not None
    archived = parse_archive(alice.decrypt(first.archive.content))
    request = _request(people, archive_keys=(bob.key.vault_entry,), archive_mode=ArchiveMode.ANY)
    second = await recover_platform(store, FakeClock(), archived, request, publisher=Recorder())
    assert second.archive is not None and second.archive.fingerprints == (bob.fingerprint,)
    assert await _archive_opens(store, bob.decrypt(second.archive.content))


async def test_recover_refuses_an_empty_store_and_a_foreign_archive(people: list[Custodian]) -> None:
    store, first, _ = await _init(people)
    foreign = ArchivedKey("another-cluster", parse_archive(
        b'{"format": "%s", "cluster_id": "x", "root_key": "%s"}' % (ARCHIVE_FORMAT.encode(), b"00" * 32)
    ).root_key)
    publisher = Recorder()
    with pytest.raises(NotInitialized, match="no platform to recover"):
        await recover_platform(MemoryStore(), FakeClock(), foreign, _request(people), publisher=publisher)
    with pytest.raises(InvalidRequest, match=f"cluster another-cluster, this store to {first.cluster_id}"):
        await recover_platform(store, FakeClock(), foreign, _request(people), publisher=publisher)
    same_cluster = ArchivedKey(first.cluster_id, foreign.root_key)
    with pytest.raises(InvalidRequest, match="does not open this store's keyring"):
        await recover_platform(store, FakeClock(), same_cluster, _request(people), publisher=publisher)
    assert publisher.staged == []
    assert "root_key" not in repr(foreign) and "00" * 32 not in repr(foreign)
