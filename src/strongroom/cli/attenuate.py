"""``strongroom token attenuate`` and ``strongroom token inspect``: biscuit tokens, on the holder's side.

``attenuate`` appends a block of checks to an IAM token (docs/spec/tokens.md section 5) and prints the new
token. It needs the IAM public key: ``--public-key`` (no server contacted at all) or, without it,
``GET sys/iam/public-key`` on the configured server. The token comes from ``--token`` or standard input,
never from a positional argument alone, so it need not appear in shell history.

``inspect`` prints a token's blocks as Datalog without verifying anything.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from strongroom.cli.base import EXIT_OK, CommandFailed, Context, UsageError, api_errors, payload
from strongroom.errors import InvalidRequest

if TYPE_CHECKING:
    from strongroom.auth.iam import IamPublicKey

# strongroom.auth.iam (biscuit) and the duration parser are imported inside the handlers: every other
# command would otherwise pay their ~40 ms of imports at start.


def _read_token(ctx: Context, value: str | None) -> str:
    """``--token T``, ``--token -`` or no flag: standard input (first line, whitespace stripped)."""
    text = ctx.stdin.read() if value in (None, "-") else value
    token = (text or "").strip()
    if not token:
        raise UsageError("No token given: use --token TOKEN or pipe the token on standard input")
    return token


def _public_key(ctx: Context, token: str) -> IamPublicKey:
    """``--public-key``, else the server's key for the token's root key id."""
    from strongroom.auth.iam import IamPublicKey, root_key_id

    try:
        if ctx.args.public_key:
            return IamPublicKey.parse(ctx.args.public_key)
        key_id = root_key_id(token)
    except InvalidRequest as exc:
        raise UsageError(exc.message) from exc
    with api_errors("Error reading the IAM public key"):
        data = payload(ctx.client.json("GET", "sys/iam/public-key"))
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    text = (keys or {}).get(str(key_id)) or data.get("public_key")
    if not isinstance(text, str):
        raise CommandFailed(f"The server publishes no IAM public key for key id {key_id}")
    try:
        return IamPublicKey.parse(text)
    except InvalidRequest as exc:
        raise CommandFailed(f"The server's IAM public key is malformed: {exc.message}") from exc


def cmd_attenuate(ctx: Context) -> int:
    """Print the token restricted by ``--path``, ``--operation`` and ``--ttl``."""
    from strongroom.auth.iam import attenuate
    from strongroom.engines.fields import parse_duration

    args = ctx.args
    token = _read_token(ctx, args.token)
    operations = [op for item in (args.operation or []) for op in item.split(",") if op.strip()]
    ttl: int | None = None
    try:
        if args.ttl is not None:
            ttl = parse_duration(args.ttl, "ttl")
            if ttl <= 0:
                raise UsageError("--ttl must be a positive duration such as 30m or 24h")
        key = _public_key(ctx, token)
        result = attenuate(
            token, key, paths=args.path or [], operations=operations, ttl=ttl, now=time.time()
        )
    except InvalidRequest as exc:
        raise UsageError(exc.message) from exc
    if ctx.output.is_table:
        ctx.output.line(result)
    else:
        ctx.output.json({"token": result})
    return EXIT_OK


def cmd_inspect(ctx: Context) -> int:
    """Print the token's blocks (not verified)."""
    from strongroom.auth.iam import inspect

    token = _read_token(ctx, ctx.args.token)
    try:
        shown: dict[str, Any] = inspect(token)
    except InvalidRequest as exc:
        raise UsageError(exc.message) from exc
    out = ctx.output
    if not out.is_table:
        out.json(shown)
        return EXIT_OK
    out.line(f"root key id: {shown['root_key_id']}   (NOT verified: this shows what the token claims)")
    for block in shown["blocks"]:
        out.line("")
        out.line(f"block {block['index']}   revocation id {block['revocation_id']}")
        for line in block["source"].strip().splitlines():
            out.line("  " + line)
    return EXIT_OK


def register(tokens: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``attenuate`` and ``inspect`` to the ``token`` command's subparsers."""
    att = tokens.add_parser(
        "attenuate",
        parents=[parent],
        help="restrict a biscuit IAM token offline (path prefixes, operations, lifetime)",
        description="Append a block of checks to a biscuit IAM token and print the new token. "
        "Every restriction given must hold for a request; the token's own self-service endpoints "
        "(lookup-self, renew-self, revoke-self) and mount discovery stay usable.",
    )
    att.add_argument("--token", help="the token to restrict ('-' or absent: read it from standard input)")
    att.add_argument("--public-key", help="IAM public key, ed25519/HEX (default: GET sys/iam/public-key)")
    att.add_argument("--path", action="append", metavar="PREFIX",
                     help="allow only request paths starting with PREFIX (repeatable; end it with /)")
    att.add_argument("--operation", action="append", metavar="OP",
                     help="allow only OP: read, create, update, patch, delete, list or write "
                     "(= create,update); repeatable or comma-separated")
    att.add_argument("--ttl", help='expire after this long, e.g. "30m" or "24h"')
    att.set_defaults(handler=cmd_attenuate)

    ins = tokens.add_parser("inspect", parents=[parent], help="show a biscuit IAM token's blocks (not verified)")
    ins.add_argument("token", nargs="?", help="the token ('-' or absent: standard input)")
    ins.set_defaults(handler=cmd_inspect)
