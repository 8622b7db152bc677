"""``strongroom token create|lookup|renew|revoke|capabilities``, shaped like Vault's ``vault token``.

``attenuate`` and ``inspect`` (biscuit IAM tokens) live in :mod:`strongroom.cli.attenuate`.
"""

from __future__ import annotations

import argparse
from typing import Any

from strongroom.cli import attenuate
from strongroom.cli.base import (
    EXIT_API,
    EXIT_OK,
    CommandFailed,
    Context,
    UsageError,
    add_bool,
    api_errors,
    key_values,
    payload,
)
from strongroom.cli.kv import print_field
from strongroom.cli.output import auth_rows, envelope_json, print_secret, print_warnings


def _auth_output(ctx: Context, secret: dict[str, Any] | None) -> int:
    """Print a response carrying ``auth`` (create, renew); ``--field`` picks one auth row."""
    out = ctx.output
    if secret is None:
        raise CommandFailed("No token returned by the server", EXIT_API)
    auth = secret.get("auth") if isinstance(secret.get("auth"), dict) else {}
    if ctx.args.field:
        rows = dict(auth_rows(auth or {}))
        # The raw token/accessor, not the table rendering.
        rows["token"] = str((auth or {}).get("client_token", ""))
        rows["token_accessor"] = str((auth or {}).get("accessor", ""))
        return print_field(out, rows, ctx.args.field)
    if not out.is_table:
        out.json(envelope_json(secret))
        return EXIT_OK
    print_warnings(out, secret)
    out.table(auth_rows(auth or {}))
    return EXIT_OK


def cmd_create(ctx: Context) -> int:
    """POST auth/token/create (``create-orphan`` with ``--orphan``, ``create/ROLE`` with ``--role``)."""
    args = ctx.args
    policies = [p.strip() for item in (args.policy or []) for p in item.split(",") if p.strip()]
    body: dict[str, Any] = {
        "policies": policies,
        "no_default_policy": args.no_default_policy,
        "renewable": args.renewable,
        "num_uses": args.use_limit,
        "display_name": args.display_name,
    }
    for key, value in (
        ("ttl", args.ttl),
        ("explicit_max_ttl", args.explicit_max_ttl),
        ("period", args.period),
        ("id", args.id),
        ("type", args.type),
        ("meta", key_values(args.metadata, "metadata")),
    ):
        if value is not None:
            body[key] = value
    if args.role:
        path = f"auth/token/create/{args.role}"
    elif args.orphan:
        path = "auth/token/create-orphan"
    else:
        path = "auth/token/create"
    with api_errors("Error creating token"):
        secret = ctx.client.json("POST", path, json=body)
    return _auth_output(ctx, secret)


def cmd_lookup(ctx: Context) -> int:
    """Look up the caller's token, a given token, or (``--accessor``) an accessor."""
    args, out = ctx.args, ctx.output
    if args.accessor:
        if args.token is None:
            raise UsageError("Not enough arguments (expected 1, got 0)")
        path, body = "auth/token/lookup-accessor", {"accessor": args.token}
    elif args.token is None:
        path, body = "auth/token/lookup-self", None
    else:
        path, body = "auth/token/lookup", {"token": args.token}
    method = "GET" if body is None else "POST"
    with api_errors("Error looking up token"):
        secret = ctx.client.json(method, path, json=body)
    if secret is None:
        raise CommandFailed("Error looking up token: no response", EXIT_API)
    if args.field:
        return print_field(out, payload(secret), args.field)
    print_secret(out, secret, durations=True)
    return EXIT_OK


def cmd_renew(ctx: Context) -> int:
    """Renew the caller's token, a given token, or (``--accessor``) by accessor."""
    args = ctx.args
    body: dict[str, Any] = {}
    if args.increment is not None:
        body["increment"] = args.increment
    if args.accessor:
        if args.token is None:
            raise UsageError("Not enough arguments (expected 1, got 0)")
        path = "auth/token/renew-accessor"
        body["accessor"] = args.token
    elif args.token is None:
        path = "auth/token/renew-self"
    else:
        path = "auth/token/renew"
        body["token"] = args.token
    with api_errors("Error renewing token"):
        secret = ctx.client.json("PUT", path, json=body)
    return _auth_output(ctx, secret)


def cmd_revoke(ctx: Context) -> int:
    """Revoke a token (its children too), or only it (``--mode orphan``), by accessor, or the caller's."""
    args = ctx.args
    if args.self and (args.token is not None or args.accessor):
        raise UsageError("Cannot use -self with a token or -accessor")
    if args.mode not in (None, "", "orphan"):
        raise UsageError(f"Unsupported -mode {args.mode!r}: only 'orphan' is supported")
    if args.self:
        path, body = "auth/token/revoke-self", {}
    elif args.token is None:
        raise UsageError("Not enough arguments (expected 1, got 0)")
    elif args.accessor:
        if args.mode == "orphan":
            raise UsageError("Cannot combine -accessor with -mode=orphan")
        path, body = "auth/token/revoke-accessor", {"accessor": args.token}
    elif args.mode == "orphan":
        path, body = "auth/token/revoke-orphan", {"token": args.token}
    else:
        path, body = "auth/token/revoke", {"token": args.token}
    with api_errors("Error revoking token"):
        ctx.client.json("PUT", path, json=body)
    ctx.output.line("Success! Revoked token (if it existed)")
    return EXIT_OK


def cmd_capabilities(ctx: Context) -> int:
    """List a token's capabilities on a path (the caller's with one argument)."""
    args, out = ctx.args, ctx.output
    if len(args.args) == 1:
        path = args.args[0]
        req, body = "sys/capabilities-self", {"paths": [path]}
    elif len(args.args) == 2:
        token, path = args.args
        if args.accessor:
            req, body = "sys/capabilities-accessor", {"accessor": token, "paths": [path]}
        else:
            req, body = "sys/capabilities", {"token": token, "paths": [path]}
    else:
        relation = "Not enough" if not args.args else "Too many"
        raise UsageError(f"{relation} arguments (expected 1-2, got {len(args.args)})")
    with api_errors("Error listing capabilities"):
        secret = ctx.client.json("POST", req, json=body)
    data = payload(secret)
    # Newer servers key the answer by path; the flat "capabilities" field is the legacy single-path form.
    caps = data.get(path, data.get("capabilities"))
    if not isinstance(caps, list):
        raise CommandFailed("Error: server returned no capabilities", EXIT_API)
    caps = sorted(str(c) for c in caps)
    if out.is_table:
        out.line(", ".join(caps))
    else:
        out.json(caps)
    return EXIT_OK


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``token`` command tree."""
    token = sub.add_parser("token", help="create, look up, renew and revoke tokens")
    tokens = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)

    create = tokens.add_parser("create", parents=[parent], help="create a token")
    create.add_argument("--policy", action="append", help="policy to attach; repeat or comma-separate")
    create.add_argument("--ttl", help='initial TTL, e.g. "30m"')
    create.add_argument("--explicit-max-ttl", help="hard upper bound on the token's life")
    create.add_argument("--period", help="periodic token: every renewal resets the TTL to this")
    add_bool(create, "--orphan", False, "create without a parent (auth/token/create-orphan)")
    add_bool(create, "--no-default-policy", False, "do not attach the default policy")
    add_bool(create, "--renewable", True, "allow renewal")
    create.add_argument("--use-limit", type=int, default=0, help="number of uses (0: unlimited)")
    create.add_argument("--display-name", default="", help="name shown in lookups and audit")
    create.add_argument("--metadata", action="append", help="key=value metadata, repeatable")
    create.add_argument("--id", help="the token value itself (root only)")
    create.add_argument("--role", help="create against auth/token/create/ROLE")
    create.add_argument("--type", help="service or batch")
    create.add_argument("--field", help="print only this field (token, token_accessor, ...)")
    create.set_defaults(handler=cmd_create)

    lookup = tokens.add_parser("lookup", parents=[parent], help="show a token's properties")
    lookup.add_argument("token", nargs="?", help="token (default: the caller's)")
    add_bool(lookup, "--accessor", False, "TOKEN is an accessor")
    lookup.add_argument("--field", help="print only this field")
    lookup.set_defaults(handler=cmd_lookup)

    renew = tokens.add_parser("renew", parents=[parent], help="extend a token's TTL")
    renew.add_argument("token", nargs="?", help="token (default: the caller's)")
    add_bool(renew, "--accessor", False, "TOKEN is an accessor")
    renew.add_argument("--increment", help='requested TTL, e.g. "1h"')
    renew.add_argument("--field", help="print only this field")
    renew.set_defaults(handler=cmd_renew)

    revoke = tokens.add_parser("revoke", parents=[parent], help="revoke a token and its children")
    revoke.add_argument("token", nargs="?", help="token or, with --accessor, accessor")
    add_bool(revoke, "--self", False, "revoke the caller's token")
    add_bool(revoke, "--accessor", False, "TOKEN is an accessor")
    revoke.add_argument("--mode", help="'orphan': revoke only this token, orphaning its children")
    revoke.set_defaults(handler=cmd_revoke)

    caps = tokens.add_parser("capabilities", parents=[parent], help="a token's capabilities on a path")
    caps.add_argument("args", nargs="*", metavar="[TOKEN] PATH")
    add_bool(caps, "--accessor", False, "TOKEN is an accessor")
    caps.set_defaults(handler=cmd_capabilities)

    # Biscuit IAM tokens, handled on the holder's side (attenuate, inspect).
    attenuate.register(tokens, parent)
