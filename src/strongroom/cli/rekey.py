"""``strongroom operator rekey``: Vault's rekey ceremony over ``sys/rekey/{init,update,verify}``.

Modes, as in Vault: ``--init`` starts (new shares/threshold, optional PGP keys and verification),
``--status`` shows progress, ``--cancel`` aborts, and with a key (argument, ``-`` for stdin, or a hidden
prompt) one current share is submitted. ``--verify`` switches status, cancel and key submission to the
verification phase, where the NEW shares are submitted.
"""

from __future__ import annotations

import argparse
from typing import Any

from strongroom.cli.base import EXIT_OK, CommandFailed, Context, UsageError, add_bool, api_errors
from strongroom.cli.operator import key_argument, pgp_list, wrap
from strongroom.cli.output import render_table


def _status_rows(status: dict[str, Any], verify: bool) -> list[tuple[str, str]]:
    """Rows of Vault's rekey status table."""
    if verify:
        return [
            ("Started", _b(status.get("started"))),
            ("New Shares", str(status.get("n", 0))),
            ("New Threshold", str(status.get("t", 0))),
            ("Verification Nonce", str(status.get("nonce", ""))),
            ("Verification Progress", f"{status.get('progress', 0)}/{status.get('t', 0)}"),
        ]
    rows = [("Nonce", str(status.get("nonce", ""))), ("Started", _b(status.get("started")))]
    if status.get("started"):
        progress, required = status.get("progress", 0), status.get("required", 0)
        suffix = " (verification in progress)" if progress == required else ""
        rows.append(("Rekey Progress", f"{progress}/{required}{suffix}"))
        rows.append(("New Shares", str(status.get("n", 0))))
        rows.append(("New Threshold", str(status.get("t", 0))))
        rows.append(("Verification Required", _b(status.get("verification_required"))))
        if status.get("verification_nonce"):
            rows.append(("Verification Nonce", str(status["verification_nonce"])))
    if status.get("pgp_fingerprints"):
        rows.append(("PGP Fingerprints", "[" + " ".join(status["pgp_fingerprints"]) + "]"))
        rows.append(("Backup", _b(status.get("backup"))))
    return rows


def _b(value: Any) -> str:
    return "true" if value else "false"


def _print_status(ctx: Context, status: dict[str, Any], verify: bool) -> int:
    if ctx.output.is_table:
        ctx.output.line(render_table(_status_rows(status, verify)))
    else:
        ctx.output.json(status)
    return EXIT_OK


def _path(verify: bool) -> str:
    return "sys/rekey/verify" if verify else "sys/rekey/init"


def _status(ctx: Context, verify: bool) -> dict[str, Any]:
    with api_errors("Error reading rekey status"):
        return ctx.client.json("GET", _path(verify)) or {}


def cmd_rekey(ctx: Context) -> int:
    """Dispatch on the mode flags, like Vault's ``operator rekey``."""
    args = ctx.args
    modes = [m for m in ("init", "cancel", "status") if getattr(args, m)]
    if len(modes) > 1:
        raise UsageError("Only one of -init, -cancel or -status may be given")
    if modes and args.key is not None:
        raise UsageError(f"Too many arguments (expected 0, got 1) with -{modes[0]}")
    if args.init:
        return _init(ctx)
    if args.cancel:
        with api_errors("Error canceling rekey"):
            ctx.client.json("DELETE", _path(args.verify))
        ctx.output.line("Success! Canceled rekeying (if it was started)")
        return EXIT_OK
    if args.status:
        return _print_status(ctx, _status(ctx, args.verify), args.verify)
    return _provide(ctx)


def _init(ctx: Context) -> int:
    args = ctx.args
    body: dict[str, Any] = {
        "secret_shares": args.key_shares if args.key_shares is not None else 5,
        "secret_threshold": args.key_threshold if args.key_threshold is not None else 3,
        "pgp_keys": pgp_list(args.pgp_keys),
        "backup": args.backup,
        "require_verification": args.verify,
    }
    with api_errors("Error initializing rekey"):
        status = ctx.client.json("PUT", "sys/rekey/init", json=body) or {}
    if ctx.output.is_table and not body["pgp_keys"]:
        ctx.output.error(
            wrap(
                "WARNING! If you lose the keys after they are returned, there is no recovery. Consider "
                "canceling this operation and re-initializing with the -pgp-keys flag to protect the "
                "returned unseal keys."
            )
        )
        ctx.output.error("")
    return _print_status(ctx, status, False)


def _provide(ctx: Context) -> int:
    args = ctx.args
    status = _status(ctx, args.verify)
    if not status.get("started"):
        raise CommandFailed(
            'No rekey is in progress. Start a rekey process by running "strongroom operator rekey -init".',
            1,
        )
    label = "Unseal Key" if not args.verify else "New Unseal Key"
    if args.key is None and ctx.output.is_table:
        ctx.output.line(f"Rekey operation nonce: {status.get('nonce', '')}")
    key = key_argument(ctx, args.key, label)
    # A prompted key goes with the nonce just read; a given key needs the operator's --nonce, as in Vault,
    # so that a key never lands in a ceremony its holder did not see.
    nonce = status.get("nonce", "") if args.key is None else (args.nonce or "")
    if not nonce:
        raise UsageError("Missing nonce value: specify it via the -nonce flag")
    path = "sys/rekey/verify" if args.verify else "sys/rekey/update"
    with api_errors("Error posting unseal key"):
        resp = ctx.client.json("PUT", path, json={"key": key, "nonce": nonce}) or {}
    if not resp.get("complete"):
        return _print_status(ctx, _status(ctx, args.verify), args.verify)
    if args.verify:
        ctx.output.line(
            wrap(
                "Rekey verification successful. The rekey operation is complete and the new keys are "
                "now active."
            )
        )
        return EXIT_OK
    return _print_new_keys(ctx, status, resp)


def _print_new_keys(ctx: Context, status: dict[str, Any], resp: dict[str, Any]) -> int:
    out = ctx.output
    if not out.is_table:
        out.json(resp)
        return EXIT_OK
    hex_keys = resp.get("keys") or []
    b64_keys = resp.get("keys_base64") or []
    shown = b64_keys if len(b64_keys) == len(hex_keys) else hex_keys
    fingerprints = resp.get("pgp_fingerprints") or []
    out.line()
    for i, key in enumerate(shown):
        if fingerprints:
            out.line(f"Key {i + 1} fingerprint: {fingerprints[i]}; value: {key}")
        else:
            out.line(f"Key {i + 1}: {key}")
    out.line()
    out.line(f"Operation nonce: {resp.get('nonce', '')}")
    n, t = status.get("n", 0), status.get("t", 0)
    out.line()
    if not resp.get("verification_required"):
        out.line(
            wrap(
                f"Vault unseal keys rekeyed with {n} key shares and a key threshold of {t}. Please "
                "securely distribute the key shares printed above. When Vault is re-sealed, restarted, "
                f"or stopped, you must supply at least {t} of these keys to unseal it before it can "
                "start servicing requests."
            )
        )
        return EXIT_OK
    out.line(
        wrap(
            f"Vault has created a new unseal key, split into {n} key shares and a key threshold of {t}. "
            "These will not be active until after verification is complete. Please securely distribute "
            "the key shares printed above."
        )
    )
    out.line()
    out.line(f"Verification Nonce: {resp.get('verification_nonce', '')}")
    out.error(
        wrap(
            "Again, these key shares are _not_ valid until verification is performed: submit them with "
            '"strongroom operator rekey -verify -nonce=<verification nonce> <new key>".'
        )
    )
    return EXIT_OK


def register(ops: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``operator rekey``."""
    rekey = ops.add_parser("rekey", parents=[parent], help="generate new unseal keys (rekey ceremony)")
    rekey.add_argument("key", nargs="?", help="a current (or, with --verify, new) key share; '-' reads stdin")
    add_bool(rekey, "--init", False, "start a rekey")
    add_bool(rekey, "--cancel", False, "cancel the rekey (or the verification with --verify)")
    add_bool(rekey, "--status", False, "print the rekey (or verification) progress")
    add_bool(rekey, "--verify", False, "with --init: require verification; otherwise: act on verification")
    add_bool(rekey, "--backup", False, "with --pgp-keys: ask the server to back up the encrypted shares")
    rekey.add_argument("--key-shares", type=int, default=None, help="number of new shares (default 5)")
    rekey.add_argument("--key-threshold", type=int, default=None, help="new threshold (default 3)")
    rekey.add_argument("--pgp-keys", help="comma-separated public key files for the new shares")
    rekey.add_argument("--nonce", help="the rekey (or verification) nonce, needed when KEY is given")
    rekey.set_defaults(handler=cmd_rekey)
