"""``strongroom operator migrate -from URL -to URL``: copy a whole store to another backend, OFFLINE.

No server may run on either store while it copies (stop every node first; start them on the new URL
afterwards). The source is read in one snapshot transaction and checked entirely (every record must fit
the destination's limits) before anything is written; the destination must be empty, or hold only an
interrupted migration or restore. There is deliberately no ``-force`` to clear a populated destination: a
mistyped URL would destroy a live store. Clear it with the backend's own tools if that is really meant.

Writes go in chunks within the destination's limits (etcd: 128 operations, ~1.5 MiB per transaction),
keyrings last, so a destination whose copy stopped half-way can never be unsealed; re-run the command.
At the end both stores are read afresh and their record counts and SHA-256 digests (over the ordered
key/value pairs) printed; any difference exits with code 2. ``-verify-only`` just compares two stores.

Storage URLs are those of ``strongroom server -storage`` (credentials come from the backend's file or
environment variable, never from the URL).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from strongroom.cli.base import EXIT_API, EXIT_OK, CommandFailed, Context, UsageError, add_bool
from strongroom.cli.output import FORMATS

__all__ = ["register"]


def _rows(report: Any) -> list[tuple[str, str]]:
    return [
        ("Copied", f"{report.copied.count} records, sha256 {report.copied.digest}"),
        ("Source", f"{report.source.count} records, sha256 {report.source.digest}"),
        ("Destination", f"{report.destination.count} records, sha256 {report.destination.digest}"),
        ("Transactions", str(report.transactions)),
    ]


async def _run(args: argparse.Namespace) -> Any:
    from strongroom.crypto.snapshot_mac import PairDigest
    from strongroom.storage.migrate import MigrationReport, migrate, summarize
    from strongroom.storage.url import open_store

    source = open_store(args.from_url)
    try:
        dest = open_store(args.to_url)
        try:
            if args.verify_only:
                src_sum = await summarize(source, PairDigest)
                dest_sum = await summarize(dest, PairDigest)
                return MigrationReport(src_sum, src_sum, dest_sum, 0)
            return await migrate(source, dest, PairDigest)
        finally:
            await dest.close()
    finally:
        await source.close()


def cmd_migrate(ctx: Context) -> int:
    """Run the migration (or comparison) and print both fingerprints; exit 2 if they differ."""
    from strongroom.errors import InvalidRequest, StrongroomError

    args, out = ctx.args, ctx.output
    if not args.from_url or not args.to_url:
        raise UsageError("both -from and -to storage URLs are required")
    if args.from_url == args.to_url:
        raise UsageError("-from and -to name the same store")
    try:
        report = asyncio.run(_run(args))
    except InvalidRequest as exc:
        raise CommandFailed(f"Error migrating: {exc.message}", 1) from exc
    except StrongroomError as exc:
        raise CommandFailed(f"Error migrating: {exc.message or type(exc).__name__}", EXIT_API) from exc
    if not out.is_table:
        out.json(
            {
                "verified": report.verified,
                "copied": {"records": report.copied.count, "sha256": report.copied.digest},
                "source": {"records": report.source.count, "sha256": report.source.digest},
                "destination": {"records": report.destination.count, "sha256": report.destination.digest},
                "transactions": report.transactions,
            }
        )
    else:
        rows = _rows(report)
        if args.verify_only:
            rows = [rows[1], rows[2]]
        out.table(rows, header=False)
    if not report.verified:
        raise CommandFailed("Error: verification failed: the stores differ in count or digest", EXIT_API)
    if out.is_table:
        what = "The stores match." if args.verify_only else "Migrated and verified."
        out.line(f"Success! {what}")
    return EXIT_OK


def register(ops: Any) -> None:
    """Add ``operator migrate`` to the operator subcommands."""
    p = ops.add_parser(
        "migrate",
        help="copy a whole store to another backend (offline: no server may run on either)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--from", dest="from_url", metavar="URL", help="storage URL to copy from (read only)")
    p.add_argument("--to", dest="to_url", metavar="URL", help="storage URL to copy into (must be empty)")
    add_bool(p, "--verify-only", False, "copy nothing: compare the two stores' counts and digests")
    p.add_argument("--format", choices=FORMATS, default=None, help="output format (default: table)")
    p.set_defaults(handler=cmd_migrate)
