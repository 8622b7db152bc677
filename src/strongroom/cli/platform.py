"""``strongroom platform init|recover``: the offline platform ceremony. No server runs; core is used directly.

``init`` creates the platform (root namespace) root key, gives each custodian a share encrypted to their
OpenPGP key (one file each, ``gpg --decrypt FILE`` prints what ``vault``/``bao``/``strongroom operator
unseal`` accept), optionally archives the whole key, and initialises the store in one transaction. The node
then starts sealed; no root token exists until the generate-root ceremony makes one.

``recover`` takes a decrypted archive (``-`` reads it from stdin, so it need not touch a disk:
``gpg --decrypt root-key-archive.asc | strongroom platform recover --archive - ...``), and replaces the root
key and every share at once: the old shares stop working.

Every file goes into a NEW (or empty) output directory, so old and new shares never mix; the directory
also gets ``ceremony-manifest.txt``, whose ``sha256sum`` is the verification digest. Guide:
docs/operations/platform-ceremony.md. Exit codes: 0 success, 1 bad flags, keys or archive, 2 the store
refused (already initialised, not initialised) or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.cli.base import EXIT_API, EXIT_OK, EXIT_USAGE, CommandFailed, Context, Parser, UsageError
from strongroom.cli.output import FORMATS

if TYPE_CHECKING:
    from strongroom.core.namespace import NamespaceKeys
    from strongroom.core.platform import CeremonyFile, CeremonyRequest, CeremonyResult
    from strongroom.crypto.secret import SecretBytes
    from strongroom.storage.base import Transaction

__all__ = ["DirectoryPublisher", "register"]

MANIFEST_FILE = "ceremony-manifest.txt"

BYPASS_WARNING = (
    "WARNING! The archive of the WHOLE platform root key can be decrypted by {who} ALONE: that person can "
    "unseal the platform without any custodian, bypassing the {k}-of-{n} threshold. Use --archive-mode all "
    "with several keys unless this is really intended."
)


class DirectoryPublisher:
    """Writes the ceremony's files into a directory that is new or empty; removes them if the commit fails.

    Files are created exclusively (never overwritten), mode 0600, and fsynced with their directory before
    the storage transaction runs.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._written: list[Path] = []
        self._created = False

    def check(self) -> None:
        """Refuse a directory that holds anything (old shares must never sit beside new ones).

        Raises:
            UsageError: the path is not a directory, or is not empty.
        """
        if self.directory.exists() and (not self.directory.is_dir() or any(self.directory.iterdir())):
            raise UsageError(
                f"output directory {self.directory} exists and is not empty: choose a new --out-dir "
                "(old and new ceremony files must never mix)"
            )

    async def stage(self, files: Sequence[CeremonyFile]) -> None:
        """Write every file durably. Raises ``UsageError`` for an unusable directory or an I/O error."""
        self.check()
        try:
            if not self.directory.exists():
                self.directory.mkdir(mode=0o700)
                self._created = True
            for item in files:
                self.write(item.name, item.content)
        except OSError as exc:
            await self.discard()
            raise UsageError(f"cannot write the ceremony files in {self.directory}: {exc.strerror}") from exc

    def write(self, name: str, content: bytes) -> Path:
        """Create ``name`` exclusively with ``content`` and make it durable; return its path."""
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._written.append(path)
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path

    async def discard(self) -> None:
        """Remove the files written so far, and the directory if this publisher created it."""
        for path in self._written:
            path.unlink(missing_ok=True)
        self._written.clear()
        if self._created:
            with contextlib.suppress(OSError):  # someone put something else there: leave it
                self.directory.rmdir()
            self._created = False


def _request(args: argparse.Namespace) -> CeremonyRequest:
    from strongroom.cli.operator import read_pgp_key
    from strongroom.core.platform import ArchiveMode, CeremonyRequest

    if not args.pgp_key:
        raise UsageError("at least one --pgp-key FILE is required (one per share, in share order)")
    return CeremonyRequest(
        secret_shares=args.shares,
        secret_threshold=args.threshold,
        pgp_keys=tuple(read_pgp_key(p) for p in args.pgp_key),
        archive_keys=tuple(read_pgp_key(p) for p in args.archive_pgp_key or ()),
        archive_mode=ArchiveMode(args.archive_mode) if args.archive_mode else None,
    )


async def _platform_records(tx: Transaction, keys: NamespaceKeys) -> None:
    """What the platform starts with besides its keys: Vault's mount table and default policy."""
    from strongroom.auth.policy_store import PolicyStore
    from strongroom.core.mounts import store_table
    from strongroom.engines.bootstrap import initial_table

    store_table(tx, keys, initial_table(dev_kv=False))
    await PolicyStore(tx, keys).write_default()


def _new_iam_key() -> SecretBytes:
    """The platform's first IAM signing key (key id 1), serialised for its barrier record."""
    from strongroom.auth.iam.signing import IamKey

    return IamKey.generate().to_bytes()


async def _run(
    args: argparse.Namespace, request: CeremonyRequest, archive: bytes | None, publisher: DirectoryPublisher
) -> CeremonyResult:
    from strongroom.clock import SystemClock
    from strongroom.core.platform import check_request, initialize_platform, parse_archive, recover_platform
    from strongroom.storage.url import open_store

    # Both before the store is opened: opening a SQLite URL creates the file.
    check_request(request)
    archived = parse_archive(archive) if archive is not None else None
    store = open_store(args.storage)
    try:
        if archived is None:
            return await initialize_platform(
                store, SystemClock(), request, setup=_platform_records, new_iam_key=_new_iam_key, publisher=publisher
            )
        return await recover_platform(store, SystemClock(), archived, request, publisher=publisher)
    finally:
        await store.close()


def _read_archive(ctx: Context, source: str) -> bytes:
    from strongroom.core.platform import MAX_ARCHIVE_BYTES

    try:
        if source == "-":
            buffer = getattr(ctx.stdin, "buffer", None)
            if buffer is not None:
                data: bytes = buffer.read(MAX_ARCHIVE_BYTES + 1)
                return data
            return ctx.stdin.read(MAX_ARCHIVE_BYTES + 1).encode()
        with open(source, "rb") as handle:
            return handle.read(MAX_ARCHIVE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"Error reading archive {source}: {exc.strerror}") from exc


def cmd_ceremony(ctx: Context) -> int:
    """Run ``platform init`` or ``platform recover`` and print the files, the manifest and the digest."""
    from strongroom.errors import AlreadyInitialized, InvalidRequest, NotInitialized, StrongroomError

    args, out = ctx.args, ctx.output
    if not args.storage:
        raise UsageError("--storage URL is required (the store the platform lives in)")
    if args.storage.startswith("memory:"):
        raise UsageError("memory:// storage ends with this command: give the store the servers will use")
    if args.shares is None or args.threshold is None:
        raise UsageError("--shares N and --threshold K are required")
    request = _request(args)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    directory = Path(args.out_dir or f"strongroom-platform-{args.operation}-{stamp}")
    publisher = DirectoryPublisher(directory)
    publisher.check()
    verb = "initializing" if args.operation == "init" else "recovering"
    if request.archive_keys and (request.archive_mode == "any" or len(request.archive_keys) == 1):
        who = "EACH archive key holder" if len(request.archive_keys) > 1 else "the single archive key holder"
        out.error(BYPASS_WARNING.format(who=who, k=args.threshold, n=args.shares))
    archive = _read_archive(ctx, args.archive) if args.operation == "recover" else None
    try:
        result = asyncio.run(_run(args, request, archive, publisher))
    except (AlreadyInitialized, NotInitialized) as exc:
        raise CommandFailed(f"Error {verb} the platform: {exc.message}", EXIT_API) from exc
    except InvalidRequest as exc:
        raise CommandFailed(f"Error {verb} the platform: {exc.message}", EXIT_USAGE) from exc
    except StrongroomError as exc:
        raise CommandFailed(f"Error {verb} the platform: {exc.message or type(exc).__name__}", EXIT_API) from exc
    try:
        publisher.write(MANIFEST_FILE, result.manifest.encode())
    except OSError as exc:  # committed: the manifest is also printed below, so nothing is lost
        out.error(f"Warning: could not write {MANIFEST_FILE}: {exc.strerror}; copy the manifest printed below")
    _report(ctx, result, directory)
    return EXIT_OK


def _report(ctx: Context, result: CeremonyResult, directory: Path) -> None:
    out = ctx.output
    archive = result.archive
    if not out.is_table:
        out.json(
            {
                "operation": result.operation,
                "ceremony_id": result.ceremony_id,
                "cluster_id": result.cluster_id,
                "cluster_name": result.cluster_name,
                "secret_shares": result.config.secret_shares,
                "secret_threshold": result.config.secret_threshold,
                "output_directory": str(directory.resolve()),
                "shares": [
                    {"index": i, "fingerprint": f.fingerprints[0], "file": f.name, "sha256": f.sha256}
                    for i, f in enumerate(result.shares, 1)
                ],
                "archive": None
                if archive is None
                else {
                    "mode": result.archive_mode.value if result.archive_mode else None,
                    "recipients": list(archive.fingerprints),
                    "file": archive.name,
                    "sha256": archive.sha256,
                },
                "manifest": MANIFEST_FILE,
                "manifest_text": result.manifest,
                "digest": result.digest,
            }
        )
        return
    config = result.config
    done = "initialised" if result.operation == "init" else "recovered: the root key and every share were replaced"
    out.line(f"Platform {done}. It is sealed; no root token exists (use the generate-root ceremony).")
    out.line()
    rows = [
        ("Cluster ID", result.cluster_id),
        ("Cluster name", result.cluster_name),
        ("Ceremony ID", result.ceremony_id),
        ("Shares / threshold", f"{config.secret_shares} / {config.secret_threshold}"),
        ("Output directory", str(directory.resolve())),
    ]
    # The file name carries the custodian's key fingerprint.
    rows += [(f"Share {i}", f.name) for i, f in enumerate(result.shares, 1)]
    if archive is not None and result.archive_mode is not None:
        order = " then ".join(archive.fingerprints) if result.archive_mode == "all" else ", ".join(archive.fingerprints)
        how = "decrypt in this order" if result.archive_mode == "all" else "any one of"
        rows.append(("Archive", f"{archive.name}  (mode {result.archive_mode.value}: {how} {order})"))
    rows += [("Manifest", MANIFEST_FILE), ("Verification digest", result.digest)]
    out.table(rows)
    out.line()
    out.line("Manifest (its SHA-256 is the verification digest):")
    out.raw(result.manifest)
    out.line()
    out.line("Give each custodian ONLY their own share file. The custodian checks the digest with")
    out.line(f"`sha256sum {MANIFEST_FILE}` against the one read out by the others, then decrypts with")
    out.line("`gpg --decrypt share-N-FINGERPRINT.asc` and submits the printed hex share with")
    out.line("`vault operator unseal`, `bao operator unseal` or `strongroom operator unseal` (no token needed).")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL", help="storage URL of the platform's store (as `server --storage`)")
    p.add_argument("--shares", type=int, metavar="N", help="number of key shares (one per custodian)")
    p.add_argument("--threshold", type=int, metavar="K", help="shares needed to unseal")
    p.add_argument(
        "--pgp-key", action="append", metavar="FILE",
        help="a custodian's OpenPGP public key (armored or binary); repeat once per share, in share order",
    )
    p.add_argument(
        "--archive-pgp-key", action="append", metavar="FILE",
        help="also archive the WHOLE root key for this key; repeat for more (needs --archive-mode)",
    )
    p.add_argument(
        "--archive-mode", choices=("all", "any"),
        help="all: nested encryption, every archive key needed; any: each archive key alone (bypasses the threshold)",
    )
    p.add_argument("--out-dir", metavar="DIR", help="new or empty directory for the files (default: a new one here)")
    p.add_argument("--format", choices=FORMATS, default=None, help="output format (default: table)")


def register(sub: Any) -> None:
    """Add ``platform init`` and ``platform recover`` to the top-level subcommands."""
    p = sub.add_parser("platform", help="offline platform ceremony (no server)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ops = p.add_subparsers(dest="operation", metavar="COMMAND", required=True, parser_class=Parser)
    init = ops.add_parser(
        "init", help="create the platform root key and its PGP-encrypted shares",
        description="Initialise the platform of an empty store, offline: one PGP-encrypted share file per "
        "custodian, an optional archive, no root token. Guide: docs/operations/platform-ceremony.md",
    )
    _add_common(init)
    init.set_defaults(handler=cmd_ceremony)
    recover = ops.add_parser(
        "recover", help="replace the root key and shares using the decrypted archive",
        description="Open the platform with the decrypted archive and replace its root key and every share in "
        "one transaction (old shares stop working). Guide: docs/operations/platform-ceremony.md",
    )
    recover.add_argument("--archive", required=True, metavar="FILE", help="the decrypted archive, or - for stdin")
    _add_common(recover)
    recover.set_defaults(handler=cmd_ceremony)
