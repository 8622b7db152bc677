"""Stored ACL policies of a namespace and the ACL of a set of policy names.

Policies live in ``("ns", id, "pol")`` under blind-indexed names (a policy name never appears in storage);
the record holds ``{"name", "policy"}``. ``root`` is built in and never stored; ``default`` is written at
initialisation, may be edited, and cannot be deleted, as in Vault.
"""

from __future__ import annotations

from typing import Any

import orjson

from strongroom.auth.acl import ACL
from strongroom.auth.default_policies import DEFAULT_POLICY_NAME, DEFAULT_POLICY_TEXT, ROOT_POLICY_NAME
from strongroom.auth.policy import Policy, normalize_policy_name, parse_policy
from strongroom.core.namespace import NamespaceKeys
from strongroom.errors import CorruptRecord, InvalidRequest
from strongroom.storage.base import Transaction

_ENTRY = ("p",)
MAX_POLICY_BYTES = 1024 * 1024
"""Parsing runs on the event loop (about 1.4 s per MiB): a cap keeps one request from stalling a node."""


def _decode(raw: bytes) -> Policy:
    try:
        doc = orjson.loads(raw)
        return parse_policy(doc["policy"], doc["name"])
    except (orjson.JSONDecodeError, KeyError, TypeError, InvalidRequest) as exc:
        raise CorruptRecord("malformed policy record") from exc


class PolicyStore:
    """Policies of one namespace inside one transaction."""

    __slots__ = ("_index", "_keys")

    def __init__(self, tx: Transaction, keys: NamespaceKeys) -> None:
        self._keys = keys
        self._index = keys.paths(tx, "pol")

    @staticmethod
    def normalize(name: str) -> str:
        """Return the stored form of a policy name (Vault lowercases them).

        Raises:
            InvalidRequest: the name is empty or contains a slash.
        """
        name = name.strip().lower()
        if not name or "/" in name or len(name) > 256:
            raise InvalidRequest(f"invalid policy name {name!r}")
        return name

    async def get(self, name: str) -> Policy | None:
        """Return the parsed policy ``name``, or ``None``. ``root`` is not a stored policy."""
        name = self.normalize(name)
        if name == ROOT_POLICY_NAME:
            return None
        entry = self._index.entry(self._index.id_of(name))
        return await entry.get_decoded(_ENTRY, _decode, self._keys.cache)

    async def put(self, name: str, text: str) -> Policy:
        """Parse and store a policy (create or replace).

        Raises:
            InvalidRequest: the name is ``root`` or invalid, or the policy does not parse.
        """
        name = normalize_policy_name(name)
        if "/" in name or len(name) > 256:
            raise InvalidRequest(f"invalid policy name {name!r}")
        if len(text) > MAX_POLICY_BYTES:
            raise InvalidRequest(f"policy is larger than {MAX_POLICY_BYTES} bytes")
        policy = parse_policy(text, name)
        entry_id = await self._index.link(name)
        self._index.entry(entry_id).put_json(_ENTRY, {"name": name, "policy": text})
        return policy

    async def delete(self, name: str) -> None:
        """Delete a policy (no error if absent).

        Raises:
            InvalidRequest: the policy is ``root`` or ``default``.
        """
        name = self.normalize(name)
        # OpenBao's two messages differ in quoting; clients match on them.
        if name == ROOT_POLICY_NAME:
            raise InvalidRequest('cannot delete "root" policy')
        if name == DEFAULT_POLICY_NAME:
            raise InvalidRequest("cannot delete default policy")
        entry = self._index.entry(self._index.id_of(name))
        if await entry.exists(*_ENTRY):
            entry.clear(*_ENTRY)
            await self._index.unlink(name)

    async def names(self) -> list[str]:
        """Return every policy name, ``root`` included, sorted."""
        names = await self._index.list("")
        return sorted({*names, ROOT_POLICY_NAME})

    async def write_default(self) -> None:
        """Store Vault's built-in ``default`` policy (at initialisation)."""
        await self.put(DEFAULT_POLICY_NAME, DEFAULT_POLICY_TEXT)

    async def acl(self, names: tuple[str, ...], now: float) -> ACL:
        """Return the ACL of a token holding ``names`` at time ``now``; unknown names are ignored, as in Vault.

        ACLs are cached per policy set; a cached ACL is reused only while the same decoded policies back
        it and none of its rules has expired since it was built.
        """
        if ROOT_POLICY_NAME in names:
            return ACL.root()
        policies: list[Policy] = []
        for n in names:
            p = await self.get(n)
            if p is not None:
                policies.append(p)
        slot = b"acl\x00" + "\x00".join(names).encode()
        hit = self._keys.cache.get(slot)
        if hit is not None:
            # The entry keeps the very Policy objects it was built from, and a hit needs the same objects
            # (identity): a policy changed in storage is decoded into a new object, so a stale ACL can never
            # be reused, and keeping them alive means no new object can take an old one's identity.
            built_from, cached = hit[1]
            if len(built_from) == len(policies) and all(a is b for a, b in zip(built_from, policies, strict=True)):
                acl: ACL = cached
                if acl.expires_at is None or now < acl.expires_at:
                    return acl
        built = ACL(policies, now=now)
        self._keys.cache[slot] = (b"", (tuple(policies), built))
        return built


def describe(policy: Policy) -> dict[str, Any]:
    """Return ``{"name", "policy"}`` as ``sys/policies/acl/:name`` shows it."""
    return {"name": policy.name, "policy": policy.raw}
