"""``strongroom kv metadata get|put|delete``: KV v2 metadata, shaped like Vault's ``vault kv metadata``."""

from __future__ import annotations

import argparse
from typing import Any

from strongroom.cli.base import (
    EXIT_API,
    EXIT_OK,
    CommandFailed,
    Context,
    add_bool,
    api_errors,
    key_values,
    payload,
)
from strongroom.cli.kv import KVPath, print_path, print_section, resolve
from strongroom.cli.output import envelope_json, print_warnings


def _resolve_v2(ctx: Context) -> KVPath:
    kv = resolve(ctx, ctx.args.path, ctx.args.mount)
    if kv.version != 2:
        raise CommandFailed("Metadata not supported on KV Version 1", 1)
    return kv


def cmd_metadata_get(ctx: Context) -> int:
    """Read a key's metadata and every version's state."""
    out = ctx.output
    kv = _resolve_v2(ctx)
    path = kv.api("metadata")
    with api_errors(f"Error reading {path}"):
        secret = ctx.client.read(path)
    if secret is None:
        raise CommandFailed(f"No value found at {path}", EXIT_API)
    if not out.is_table:
        out.json(envelope_json(secret))
        return EXIT_OK
    print_warnings(out, secret)
    data = dict(payload(secret))
    versions = data.pop("versions", None) or {}
    print_path(out, "Metadata Path", path)
    print_section(out, "Metadata", data)
    # Newest first would hide the oldest at the bottom; Vault lists versions in ascending order.
    for number in sorted(versions, key=lambda v: int(v) if str(v).isdigit() else 0):
        out.line()
        info = versions[number]
        print_section(out, f"Version {number}", info if isinstance(info, dict) else {})
    return EXIT_OK


def cmd_metadata_put(ctx: Context) -> int:
    """Write metadata settings; only the flags given are sent, so the others keep their values."""
    args = ctx.args
    kv = _resolve_v2(ctx)
    body: dict[str, Any] = {}
    if args.max_versions is not None:
        body["max_versions"] = args.max_versions
    if args.cas_required is not None:
        body["cas_required"] = args.cas_required
    if args.delete_version_after is not None:
        body["delete_version_after"] = args.delete_version_after
    custom = key_values(args.custom_metadata, "custom metadata")
    if custom is not None:
        body["custom_metadata"] = custom
    path = kv.api("metadata")
    with api_errors(f"Error writing data to {path}"):
        ctx.client.json("PUT", path, json=body)
    ctx.output.line(f"Success! Data written to: {path}")
    return EXIT_OK


def cmd_metadata_delete(ctx: Context) -> int:
    """Delete a key's metadata and all its versions."""
    kv = _resolve_v2(ctx)
    path = kv.api("metadata")
    with api_errors(f"Error deleting {path}"):
        ctx.client.delete(path)
    ctx.output.line(f"Success! Data deleted (if it existed) at: {path}")
    return EXIT_OK


def register(kvs: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``kv metadata get|put|delete``."""
    meta = kvs.add_parser("metadata", help="KV v2 metadata: get, put, delete")
    metas = meta.add_subparsers(dest="kv_metadata_command", metavar="COMMAND", required=True)
    for name, func, text in (
        ("get", cmd_metadata_get, "read metadata and versions"),
        ("put", cmd_metadata_put, "write metadata settings"),
        ("delete", cmd_metadata_delete, "delete metadata and all versions"),
    ):
        p = metas.add_parser(name, parents=[parent], help=text)
        p.add_argument("--mount", help="the KV mount; PATH is then relative to it")
        p.add_argument("path", nargs="?", help="secret path")
        p.set_defaults(handler=func)
        if name == "put":
            p.add_argument("--max-versions", type=int, default=None, help="versions to keep (0: default)")
            add_bool(p, "--cas-required", None, "require check-and-set on writes")
            p.add_argument("--delete-version-after", help='e.g. "3h25m19s"; "0s" disables')
            p.add_argument("--custom-metadata", action="append", help="key=value, repeatable")
