"""``strongroom operator snapshot save|restore|inspect``: snapshots of the whole store through a server.

* ``save FILE``: ``GET sys/storage/raft/snapshot`` (root token with ``sudo``) streamed into ``FILE``
  (mode 0600, written as ``FILE.partial`` and renamed only once the download is complete and its
  structure, record count and digest check out).
* ``restore [-force] FILE``: checks the file's structure locally, then ``POST
  sys/storage/raft/snapshot`` (``snapshot-force`` with ``-force``: a snapshot of another cluster). The
  server verifies everything before writing, replaces the store's contents and seals itself: unseal it
  afterwards (with the unseal keys of the snapshot's cluster if it came from another one).
* ``restore -offline -storage URL FILE``: no server involved (stop every node first). For a store no
  node can unseal because a restore stopped half-way. Asks for unseal keys of the snapshot's cluster
  (hidden prompts) to authenticate the file with its own keyring; ``-force`` instead restores without
  authenticating (integrity only).
* ``inspect FILE``: prints the header, record count and digest (structure checked, not authenticity).

The HTTP paths are Vault's, so ``vault operator raft snapshot save|restore`` works against strongroom
and this command against Vault's raft storage (whose files are not strongroom snapshots: ``save`` then
reports the file as unreadable but keeps nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from strongroom.cli.base import EXIT_API, EXIT_OK, CommandFailed, Context, UsageError, add_bool
from strongroom.cli.client import ApiError, ClientError, VaultClient
from strongroom.cli.operator import prompt_key
from strongroom.cli.output import FORMATS

__all__ = ["register"]

SNAPSHOT_PATH = "sys/storage/raft/snapshot"
FORCE_PATH = "sys/storage/raft/snapshot-force"
CHUNK = 64 * 1024
# The server takes the whole snapshot (or does the whole restore) before it answers: allow it time.
TIMEOUT = httpx.Timeout(60.0, read=3600.0)


def _send(client: VaultClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Send a request whose body or answer is a file, streaming, with the client's settings and token.

    ``VaultClient`` speaks JSON only; its connection pool (TLS settings, namespace header) is reused.

    :raises ClientError: the request could not be sent.
    """
    headers = {"X-Vault-Token": client.settings.token} if client.settings.token else {}
    headers.update(kwargs.pop("headers", {}))
    http: httpx.Client = client._http  # same package; VaultClient has no streaming call
    request = http.build_request(method, client.url(path), headers=headers, timeout=TIMEOUT, **kwargs)
    try:
        return http.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise ClientError(f"{method} {client.url(path)}: {exc}") from exc


def _raise_for_status(resp: httpx.Response, method: str, url: str) -> None:
    if resp.status_code < 400:
        return
    raw = resp.read().decode("utf-8", "replace")
    try:
        body = resp.json()
    except ValueError:
        raise ApiError(method, url, resp.status_code, [], None, raw) from None
    errors = [str(e) for e in body.get("errors", [])] if isinstance(body, dict) else []
    raise ApiError(method, url, resp.status_code, errors, body, raw)


def _check_file(path: Path) -> dict[str, Any]:
    """Read a snapshot file's structure (header, records, trailer); return what it says.

    :raises CommandFailed: the file cannot be read or is not a complete snapshot.
    """
    from strongroom.core.snapshot_format import SnapshotReader
    from strongroom.errors import InvalidRequest

    try:
        with path.open("rb") as fh:
            reader = SnapshotReader(fh)
            count = sum(1 for _ in reader.records())
    except OSError as exc:
        raise CommandFailed(f"Error reading snapshot {path}: {exc.strerror}", 1) from exc
    except InvalidRequest as exc:
        raise CommandFailed(f"Error reading snapshot {path}: {exc.message}", 1) from exc
    h = reader.header
    return {
        "snapshot_id": h.snapshot_id.hex(),
        "created": _iso(h.created),
        "cluster_id": h.cluster_id,
        "storage_kind": h.storage_kind,
        "records": count,
        "sha256": reader.digest.hexdigest(),
    }


def _iso(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat().replace("+00:00", "Z")


def _print(ctx: Context, info: dict[str, Any]) -> None:
    if ctx.output.is_table:
        ctx.output.table([(k.replace("_", " ").title(), str(v)) for k, v in info.items()], header=False)
    else:
        ctx.output.json(info)


def cmd_save(ctx: Context) -> int:
    """Download a snapshot into FILE (atomically: FILE appears only once complete and well formed)."""
    path = Path(ctx.args.file)
    partial = path.with_name(path.name + ".partial")
    client = ctx.client
    url = client.url(SNAPSHOT_PATH)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise CommandFailed(f"Error creating {partial}: {exc.strerror}", 1) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            resp = _send(client, "GET", SNAPSHOT_PATH)
            try:
                _raise_for_status(resp, "GET", url)
                for chunk in resp.iter_bytes(CHUNK):
                    out.write(chunk)
            except httpx.HTTPError as exc:
                raise ClientError(f"GET {url}: transfer failed: {exc}") from exc
            finally:
                resp.close()
        info = _check_file(partial)
        os.replace(partial, path)
    except (ApiError, ClientError) as exc:
        raise CommandFailed(f"Error taking the snapshot: {exc}", EXIT_API) from exc
    except OSError as exc:
        raise CommandFailed(f"Error writing {path}: {exc.strerror}", 1) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    _print(ctx, {"file": str(path), **info})
    return EXIT_OK


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


def cmd_restore(ctx: Context) -> int:
    """Restore FILE through the server, or directly into a store with ``-offline``."""
    args = ctx.args
    path = Path(args.file)
    if args.offline:
        return _restore_offline(ctx, path)
    if args.storage:
        raise UsageError("-storage is only for -offline restores")
    info = _check_file(path)
    client = ctx.client
    api_path = FORCE_PATH if args.force else SNAPSHOT_PATH
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            resp = _send(
                client,
                "POST",
                api_path,
                content=_chunks(fh),
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            )
            try:
                _raise_for_status(resp, "POST", client.url(api_path))
            finally:
                resp.close()
    except (ApiError, ClientError) as exc:
        raise CommandFailed(f"Error restoring the snapshot: {exc}", EXIT_API) from exc
    except OSError as exc:
        raise CommandFailed(f"Error reading {path}: {exc.strerror}", 1) from exc
    _print(ctx, info)
    if ctx.output.is_table:
        ctx.output.line("Success! Snapshot restored. The server is sealed: unseal it to load the restored keys.")
    return EXIT_OK


def _root_key(ctx: Context, config: Any) -> Any:
    """Collect unseal key shares of the snapshot's cluster (hidden prompts) and combine them."""
    from strongroom.clock import SystemClock
    from strongroom.core.seal import ShareCollector, decode_share
    from strongroom.errors import InvalidRequest

    collector = ShareCollector(SystemClock())
    for n in range(1, config.secret_threshold + 1):
        key = prompt_key(ctx, f"Unseal Key {n} of {config.secret_threshold} of the snapshot's cluster")
        try:
            root = collector.add(decode_share(key), config)
        except InvalidRequest as exc:
            raise CommandFailed(f"Error: {exc.message}", 1) from exc
        if root is not None:
            return root
    raise CommandFailed("Error: not enough distinct unseal keys", 1)


def _restore_offline(ctx: Context, path: Path) -> int:
    """Restore FILE straight into the store at ``-storage`` (no server may run on it)."""
    from strongroom.core import snapshot
    from strongroom.errors import InvalidRequest, StrongroomError
    from strongroom.storage.url import open_store

    args = ctx.args
    if not args.storage:
        raise UsageError("-offline needs -storage URL (the store to restore into)")
    try:
        with path.open("rb") as fh:
            kek = None
            if not args.force:
                _, config, keyring = snapshot.read_root_seal(fh)
                kek = snapshot.kek_from_root_key(keyring, _root_key(ctx, config))

            async def run() -> dict[str, Any]:
                store = open_store(args.storage)
                try:
                    fh.seek(0)
                    verified = snapshot.verify_snapshot(
                        fh, kek=kek, limits=store.limits, cluster_id=None, force=args.force
                    )
                    await snapshot.restore_verified(store, fh, verified)
                    described = snapshot.describe(verified)
                    described["created"] = _iso(verified.header.created)
                    return described
                finally:
                    await store.close()

            info = asyncio.run(run())
    except OSError as exc:
        raise CommandFailed(f"Error reading {path}: {exc.strerror}", 1) from exc
    except InvalidRequest as exc:
        raise CommandFailed(f"Error restoring the snapshot: {exc.message}", 1) from exc
    except StrongroomError as exc:
        raise CommandFailed(f"Error restoring the snapshot: {exc.message or type(exc).__name__}", EXIT_API) from exc
    _print(ctx, info)
    if ctx.output.is_table:
        ctx.output.line("Success! Snapshot restored into the store. Start the server and unseal it.")
    return EXIT_OK


def cmd_inspect(ctx: Context) -> int:
    """Print a snapshot file's header, count and digest (its authenticity is not checked)."""
    _print(ctx, _check_file(Path(ctx.args.file)))
    return EXIT_OK


def register(ops: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``operator snapshot save|restore|inspect`` to the operator subcommands."""
    snap = ops.add_parser("snapshot", help="save or restore a snapshot of the whole store")
    cmds = snap.add_subparsers(dest="snapshot_command", metavar="COMMAND", required=True)

    save = cmds.add_parser(
        "save", parents=[parent], help="save a snapshot through the server (root token, sudo)"
    )
    save.add_argument("file", help="file to write (mode 0600)")
    save.set_defaults(handler=cmd_save)

    restore = cmds.add_parser(
        "restore", parents=[parent], help="restore a snapshot (the server seals itself afterwards)"
    )
    restore.add_argument("file", help="snapshot file")
    add_bool(restore, "--force", False, "restore a snapshot of another cluster (or, offline, without keys)")
    add_bool(restore, "--offline", False, "restore straight into -storage; no server may run on it")
    restore.add_argument("--storage", metavar="URL", help="with -offline: the store to restore into")
    restore.set_defaults(handler=cmd_restore)

    inspect = cmds.add_parser("inspect", help="print a snapshot file's header, record count and digest")
    inspect.add_argument("file", help="snapshot file")
    inspect.add_argument("--format", choices=FORMATS, default=None, help="output format (default: table)")
    inspect.set_defaults(handler=cmd_inspect)
