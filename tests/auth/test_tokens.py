"""Store-level guarantees of the token store: hashed storage, tree revocation, expiry at lookup, uses."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest

from strongroom.auth.tokens import TokenEntry, TokenStore
from strongroom.core.namespace import NamespaceKeys
from strongroom.errors import CorruptRecord, InvalidRequest
from tests.support.vault import InProcessVault

T = TypeVar("T")


def _keys(vault: InProcessVault) -> NamespaceKeys:
    keys = vault.node.vault("").keys
    assert keys is not None
    return keys


@asynccontextmanager
async def _store(vault: InProcessVault) -> AsyncIterator[TokenStore]:
    """A token store on one committed transaction."""
    async with vault.node.store.transaction() as tx:
        yield TokenStore(tx, _keys(vault), vault.clock)


async def _in_tx(vault: InProcessVault, fn: Callable[[TokenStore], Awaitable[T]]) -> T:
    async with _store(vault) as store:
        return await fn(store)


async def _dump(vault: InProcessVault) -> list[tuple[bytes, bytes]]:
    async with vault.node.store.transaction() as tx:
        return await tx.range(b"", b"\xff" * 64)


async def _token_area(vault: InProcessVault) -> set[bytes]:
    async with vault.node.store.transaction() as tx:
        begin, end = TokenStore(tx, _keys(vault), vault.clock).records.subspace.range()
        return {k for k, _ in await tx.range(begin, end)}


def _entry(**kw: object) -> TokenEntry:
    base = TokenEntry(token_hash=b"", accessor="", policies=("default",), creation_time=0.0)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


async def _create(
    vault: InProcessVault,
    parent: TokenEntry | None = None,
    ttl: int = 0,
    token_id: str | None = None,
    **kw: object,
) -> tuple[str, TokenEntry]:
    now = vault.clock.now()
    entry = _entry(
        parent_hash=parent.token_hash if parent else b"",
        creation_time=now,
        expire_at=now + ttl if ttl else 0.0,
        creation_ttl=ttl,
        lease_ttl=ttl,
        **kw,
    )
    return await _in_tx(vault, lambda s: s.create(entry, token_id))


async def test_tokens_and_accessors_never_stored_in_clear(vault: InProcessVault) -> None:
    custom = "my-very-own-custom-token-value"
    made = [await vault.ok("POST", "auth/token/create", json={"policies": ["p1"], "meta": {"k": "v"}})]
    made.append(await vault.ok("POST", "auth/token/create", json={"id": custom}))
    made.append(await vault.ok("POST", "auth/token/create-orphan", json={"ttl": "1h"}))
    needles = [vault.root_token.encode()]
    for body in made:
        needles += [body["auth"]["client_token"].encode(), body["auth"]["accessor"].encode()]
        # The random part alone (without "hvs.") must not show either.
        needles.append(body["auth"]["client_token"].removeprefix("hvs.").encode())
    rows = await _dump(vault)
    assert len(rows) > 5
    blob = b"\x00".join(k + b"\x00" + v for k, v in rows)
    # The tokens work, so they really are in the store searched above.
    assert (await vault.call("GET", "auth/token/lookup-self", token=custom)).status_code == 200
    assert [n for n in needles if n in blob] == []


async def test_revoking_a_three_level_tree_removes_every_record(vault: InProcessVault) -> None:
    before = await _token_area(vault)
    top, top_entry = await _create(vault)
    _, mid = await _create(vault, top_entry)
    _, mid2 = await _create(vault, top_entry)
    leaf, leaf_entry = await _create(vault, mid)
    await _create(vault, mid2)
    grown = await _token_area(vault)
    # 5 entries + 5 accessor indexes + 4 child links.
    assert len(grown - before) == 14

    async def revoke(s: TokenStore) -> int:
        return await s.revoke(top_entry)

    assert await _in_tx(vault, revoke) == 5
    assert await _token_area(vault) == before
    assert await _in_tx(vault, lambda s: s.lookup(leaf)) is None
    assert await _in_tx(vault, lambda s: s.lookup_accessor(leaf_entry.accessor)) is None
    assert await _in_tx(vault, lambda s: s.lookup(top)) is None


async def test_revoke_orphan_reparents_children_and_keeps_their_subtrees(vault: InProcessVault) -> None:
    _, top = await _create(vault)
    kid, kid_entry = await _create(vault, top)
    grandkid, _ = await _create(vault, kid_entry)
    assert await _in_tx(vault, lambda s: s.revoke(top, orphan_children=True)) == 1
    got = await _in_tx(vault, lambda s: s.lookup(kid))
    assert got is not None and got.orphan and got.parent_hash == b""
    grand = await _in_tx(vault, lambda s: s.lookup(grandkid))
    assert grand is not None and grand.parent_hash == kid_entry.token_hash
    # The orphan is now a root of its own tree: revoking it takes the grandchild with it.
    assert await _in_tx(vault, lambda s: s.revoke(got)) == 2


async def test_expiry_is_enforced_at_lookup_before_any_cleanup(vault: InProcessVault) -> None:
    token, entry = await _create(vault, ttl=60)
    vault.clock.advance(59)
    assert await _in_tx(vault, lambda s: s.lookup(token)) is not None
    vault.clock.advance(1)
    assert await _in_tx(vault, lambda s: s.lookup(token)) is None
    assert await _in_tx(vault, lambda s: s.lookup_accessor(entry.accessor)) is None
    # The record is still there: only the clock made it invalid.
    async with vault.node.store.transaction() as tx:
        store = TokenStore(tx, _keys(vault), vault.clock)
        assert await store.records.exists("id", entry.token_hash)


async def test_child_of_expired_parent_is_invalid(vault: InProcessVault) -> None:
    _, parent = await _create(vault, ttl=60)
    child, _ = await _create(vault, parent, ttl=3600)
    assert await _in_tx(vault, lambda s: s.lookup(child)) is not None
    vault.clock.advance(61)
    assert await _in_tx(vault, lambda s: s.lookup(child)) is None


async def test_tidy_removes_expired_tokens_and_their_subtrees(vault: InProcessVault) -> None:
    before = await _token_area(vault)
    _, parent = await _create(vault, ttl=60)
    await _create(vault, parent, ttl=3600)
    keep, _ = await _create(vault, ttl=3600)
    vault.clock.advance(61)
    assert await _in_tx(vault, lambda s: s.tidy()) == 2
    after = await _token_area(vault)
    # Only the live orphan's two records (entry, accessor index) remain beyond what was there before.
    assert len(after - before) == 2 and before <= after
    assert await _in_tx(vault, lambda s: s.lookup(keep)) is not None


async def test_use_counts_down_and_revokes_at_the_last_use(vault: InProcessVault) -> None:
    token, entry = await _create(vault, num_uses=2)
    await _in_tx(vault, lambda s: s.use(entry))
    current = await _in_tx(vault, lambda s: s.lookup(token))
    assert current is not None and current.num_uses == 1
    await _in_tx(vault, lambda s: s.use(current))
    assert await _in_tx(vault, lambda s: s.lookup(token)) is None


async def test_use_after_revocation_does_not_resurrect_the_token(vault: InProcessVault) -> None:
    token, entry = await _create(vault, num_uses=3)

    async def revoke_then_use(s: TokenStore) -> None:
        await s.revoke(entry)
        await s.use(entry)  # the router counts the use after a revoke-self handler ran

    await _in_tx(vault, revoke_then_use)
    assert await _in_tx(vault, lambda s: s.lookup(token)) is None


async def test_use_rereads_the_entry_so_a_renewal_is_kept(vault: InProcessVault) -> None:
    token, entry = await _create(vault, ttl=60, num_uses=3)

    async def renew_then_use(s: TokenStore) -> None:
        s.put(dataclasses.replace(entry, expire_at=entry.expire_at + 1000))
        await s.use(entry)

    await _in_tx(vault, renew_then_use)
    got = await _in_tx(vault, lambda s: s.lookup(token))
    assert got is not None and got.num_uses == 2 and got.expire_at == entry.expire_at + 1000


async def test_duplicate_and_invalid_custom_ids_are_refused(vault: InProcessVault) -> None:
    await _create(vault, token_id="custom-one")
    with pytest.raises(InvalidRequest, match="duplicate ID"):
        await _create(vault, token_id="custom-one")
    with pytest.raises(InvalidRequest):
        await _create(vault, token_id="x" * 300)


async def test_live_accessors_skip_expired_tokens(vault: InProcessVault) -> None:
    _, live = await _create(vault, ttl=3600)
    _, dead = await _create(vault, ttl=10)
    vault.clock.advance(11)
    accessors = await _in_tx(vault, lambda s: s.live_accessors())
    assert live.accessor in accessors and dead.accessor not in accessors


def test_entry_round_trip_repr_and_corruption() -> None:
    entry = _entry(token_hash=b"\x01" * 32, accessor="acc-secret", meta={"a": "b"}, period=30)
    assert TokenEntry.from_json(entry.to_json()) == entry
    assert "acc-secret" not in repr(entry)
    with pytest.raises(CorruptRecord):
        TokenEntry.from_json({"token_hash": "zz"})
    data = entry.lookup_data("tok", 0.0)
    assert data["period"] == 30 and "role" not in data and "last_renewal" not in data


def test_lookup_data_of_a_non_expiring_token() -> None:
    data = _entry(renewable=True).lookup_data("x", 100.0)
    # A token that never expires is not advertised as renewable (Vault: no lease to renew).
    assert data["renewable"] is False and data["expire_time"] is None and data["ttl"] == 0
