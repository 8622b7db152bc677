"""Purging deleted namespaces' storage: right after a delete commits, and as a background job.

A delete commits the tombstones (``core.namespaces.forget``); the subspaces are cleared afterwards in
bounded transactions (:func:`~strongroom.core.namespaces.purge_deleted`), idempotently, so it does not
matter which node finishes the work or how often it is started. The job ``namespace-purge`` runs under its
lease on every node's background runner (``core/background.py``) and picks up what a stopped node left.
"""

from __future__ import annotations

import asyncio
import logging

from strongroom.core.background import Job, JobRun
from strongroom.core.namespaces import purge_deleted
from strongroom.core.node import Node
from strongroom.errors import StrongroomError

log = logging.getLogger(__name__)

_RUNNING: set[asyncio.Task[int]] = set()
"""Purge tasks in flight (kept referenced so they are not collected before they finish)."""


def schedule_purge(node: Node) -> None:
    """Start purging in the background on the running loop (after a delete committed)."""
    task = asyncio.get_running_loop().create_task(_purge_quietly(node), name="strongroom-namespace-purge")
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def _purge_quietly(node: Node) -> int:
    try:
        return await purge_deleted(node.store, node.root)
    except StrongroomError as exc:
        # The tombstones stay; the background job finishes the purge.
        log.info("namespace purge deferred to the background job: %s", type(exc).__name__)
        return 0


async def pending_purges() -> None:
    """Wait for the purges scheduled by this process (tests)."""
    while _RUNNING:
        await asyncio.gather(*list(_RUNNING), return_exceptions=True)


async def _run(run: JobRun) -> None:
    await purge_deleted(run.node.store, run.node.root, before=run.check)


JOB = Job("namespace-purge", _run)
"""Register with :meth:`BackgroundRunner.register` (``strongroom server`` does)."""
