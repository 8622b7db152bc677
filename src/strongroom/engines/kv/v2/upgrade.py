"""Upgrade a KV v1 mount's data to KV v2 in place (Vault's ``upgrade.go``), for ``sys/mounts/:path/tune``.

Both versions index secret paths in the same :class:`~strongroom.barrier.paths.PathIndex` area, so
the upgrade keeps every entry id and directory marker and only rewrites what is inside each entry: the
v1 ``("data",)`` record becomes version 1 (created "now") with fresh metadata. As in Vault, the result
has ``current_version`` 1 and ``oldest_version`` 1.

The caller runs it in the transaction that switches the mount's version option, so a reader sees either
the v1 mount or the upgraded v2 mount, never a mix. The whole mount must fit in one transaction.
"""

from __future__ import annotations

from strongroom.barrier.records import Records
from strongroom.engines.kv.common import PATH_AREA
from strongroom.engines.kv.v1 import DATA_KEY
from strongroom.engines.kv.v2.model import META_KEY, VERSION, KeyMeta


async def upgrade_v1_to_v2(mount_records: Records, now: float) -> int:
    """Convert every v1 secret under ``mount_records`` (the mount's subspace) to a v2 secret.

    Returns the number of secrets converted; running it again converts nothing (idempotent).

    Raises:
        CorruptRecord: a stored record failed authentication.
    """
    entries = mount_records.sub(PATH_AREA, "e")
    converted = 0
    for suffix, payload in await entries.range():
        if len(suffix) != 2 or (suffix[1],) != DATA_KEY:
            continue
        entry = entries.sub(suffix[0])
        meta = KeyMeta(created=now, updated=now)
        # Vault upgrades with a window of one version, which moves oldest_version to 1.
        meta.add_version(now, None, 1)
        entry.put((VERSION, 1), payload)
        entry.put_json(META_KEY, meta.to_json())
        entry.clear(*DATA_KEY)
        converted += 1
    return converted
