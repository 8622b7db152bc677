"""``strongroom operator init|unseal|seal|rotate|key-status`` and the top-level ``status``.

Each command is a thin HTTP client; requests and output follow Vault's ``operator`` commands. Rekey lives
in :mod:`strongroom.cli.rekey`, snapshots in :mod:`strongroom.cli.snapshot` and the offline store copy in
:mod:`strongroom.cli.migrate`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import textwrap
from typing import Any

from strongroom.cli.base import (
    EXIT_API,
    EXIT_OK,
    EXIT_USAGE,
    CommandFailed,
    Context,
    UsageError,
    add_bool,
    api_errors,
    no_args,
)
from strongroom.cli.client import ApiError, ClientError
from strongroom.cli.output import Output, cell, go_value, render_table, rfc822


def wrap(text: str) -> str:
    """Wrap prose at 80 columns like Vault's ``wrapAtLength``."""
    return textwrap.fill(text, width=80)


def read_pgp_key(path: str) -> str:
    """Read a public key file the way Vault's ``-pgp-keys`` flag does; return base64 of the binary key.

    The file may hold a binary key, an ASCII-armored key, or a key already in base64. ``keybase:`` names
    are refused: they need a network lookup that strongroom does not make.

    :raises UsageError: the file cannot be read or holds none of those forms.
    """
    if path.startswith("keybase:"):
        raise UsageError(f"{path}: keybase: keys are not supported; pass a public key file")
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise UsageError(f"Error reading PGP key file {path}: {exc.strerror}") from exc
    text = content.strip()
    if text.startswith(b"-----BEGIN PGP"):
        return base64.b64encode(_dearmor(text, path)).decode()
    try:
        # Already base64 (what Vault's API wants): pass it through unchanged after checking it decodes.
        base64.b64decode(b"".join(text.split()), validate=True)
        return b"".join(text.split()).decode()
    except (binascii.Error, ValueError):
        return base64.b64encode(content).decode()


def _dearmor(text: bytes, path: str) -> bytes:
    """Decode an ASCII-armored block (RFC 4880 section 6.2): headers, blank line, base64, ``=`` checksum."""
    lines = text.decode("ascii", errors="replace").splitlines()
    body: list[str] = []
    in_headers = True
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("-----END"):
            break
        if in_headers:
            if ":" in stripped:
                continue
            in_headers = False
            if not stripped:
                continue
        if stripped.startswith("=") and len(stripped) == 5:
            continue  # CRC24 checksum line
        body.append(stripped)
    try:
        return base64.b64decode("".join(body), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UsageError(f"Error reading PGP key file {path}: armor is not valid base64") from exc


def pgp_list(value: str | None) -> list[str] | None:
    """Split a comma-separated ``--pgp-keys`` value into base64 keys."""
    if not value:
        return None
    return [read_pgp_key(p.strip()) for p in value.split(",") if p.strip()]


def prompt_key(ctx: Context, label: str) -> str:
    """Ask for a key without echo; ``-`` as the argument reads stdin instead (handled by callers)."""
    try:
        return getpass.getpass(f"{label} (will be hidden): ").strip()
    except (EOFError, KeyboardInterrupt) as exc:
        raise CommandFailed("user canceled", EXIT_USAGE) from exc


def key_argument(ctx: Context, key: str | None, label: str) -> str:
    """The key from the argument, stdin (``-``) or a no-echo prompt."""
    if key == "-":
        return ctx.stdin.read().strip()
    if key is None:
        return prompt_key(ctx, label)
    return key.strip()


# --- init -----------------------------------------------------------------------------------------------


def cmd_init(ctx: Context) -> int:
    """PUT sys/init and print the shares and root token (or the init status with ``--status``)."""
    args, out = ctx.args, ctx.output
    if args.status:
        return _init_status(ctx)
    body: dict[str, Any] = {"secret_shares": args.key_shares, "secret_threshold": args.key_threshold}
    keys = pgp_list(args.pgp_keys)
    if keys is not None:
        body["pgp_keys"] = keys
    if args.root_token_pgp_key:
        body["root_token_pgp_key"] = read_pgp_key(args.root_token_pgp_key)
    with api_errors("Error initializing"):
        resp = ctx.client.write("sys/init", body) or {}
    hex_keys = resp.get("keys") or []
    b64_keys = resp.get("keys_base64") or []
    if not out.is_table:
        out.json(
            {
                "unseal_keys_b64": b64_keys,
                "unseal_keys_hex": hex_keys,
                "unseal_shares": args.key_shares if hex_keys else 1,
                "unseal_threshold": args.key_threshold if hex_keys else 1,
                "recovery_keys_b64": resp.get("recovery_keys_base64") or [],
                "recovery_keys_hex": resp.get("recovery_keys") or [],
                "recovery_keys_shares": 0,
                "recovery_keys_threshold": 0,
                "root_token": resp.get("root_token", ""),
            }
        )
        return EXIT_OK
    shown = b64_keys if len(b64_keys) == len(hex_keys) else hex_keys
    for i, key in enumerate(shown, 1):
        out.line(f"Unseal Key {i}: {key}")
    out.line()
    out.line(f"Initial Root Token: {resp.get('root_token', '')}")
    t = args.key_threshold
    if hex_keys:
        out.line()
        out.line(
            wrap(
                f"Vault initialized with {args.key_shares} key shares and a key threshold of {t}. Please "
                "securely distribute the key shares printed above. When the Vault is re-sealed, restarted, "
                f"or stopped, you must supply at least {t} of these keys to unseal it before it can start "
                "servicing requests."
            )
        )
        out.line()
        out.line(
            wrap(
                f"Vault does not store the generated root key. Without at least {t} keys to reconstruct "
                "the root key, Vault will remain permanently sealed!"
            )
        )
        out.line()
        out.line(
            wrap(
                "It is possible to generate new unseal keys, provided you have a quorum of existing unseal "
                'keys shares. See "strongroom operator rekey" for more information.'
            )
        )
    else:
        out.line()
        out.line("Success! Vault is initialized")
    return EXIT_OK


def _init_status(ctx: Context) -> int:
    """``init --status``: exit 0 initialised, 2 not, 1 on error (2 is taken, as in Vault)."""
    with api_errors("Error checking init status", code=EXIT_USAGE):
        resp = ctx.client.json("GET", "sys/init", authenticate=False) or {}
    initialized = bool(resp.get("initialized"))
    if ctx.output.is_table:
        ctx.output.line("Vault is initialized" if initialized else "Vault is not initialized")
    else:
        ctx.output.json({"Initialized": initialized})
    return EXIT_OK if initialized else EXIT_API


# --- seal status ---------------------------------------------------------------------------------------


def _leader(ctx: Context) -> dict[str, Any]:
    """GET sys/leader; a sealed or older server that cannot answer counts as "HA disabled", as in Vault."""
    try:
        return ctx.client.json("GET", "sys/leader", authenticate=False) or {}
    except ApiError:
        return {"ha_enabled": False}


def print_seal_status(ctx: Context, status: dict[str, Any]) -> None:
    """Print a seal-status body the way Vault's ``OutputSealStatus`` does."""
    out = ctx.output
    leader = _leader(ctx)
    if not out.is_table:
        merged = dict(status)
        merged.update({k: v for k, v in leader.items() if k not in merged})
        out.json(merged)
        return
    rows = [
        ("Seal Type", cell(status.get("type", ""))),
        ("Initialized", go_value(bool(status.get("initialized")))),
        ("Sealed", go_value(bool(status.get("sealed")))),
        ("Total Shares", go_value(status.get("n", 0))),
        ("Threshold", go_value(status.get("t", 0))),
    ]
    if status.get("sealed"):
        rows.append(("Unseal Progress", f"{status.get('progress', 0)}/{status.get('t', 0)}"))
        rows.append(("Unseal Nonce", cell(status.get("nonce", ""))))
    if status.get("version"):
        rows.append(("Version", str(status["version"])))
    # OpenBao renamed build_date to commit_date; show whichever the server sent.
    build = status.get("build_date") or status.get("commit_date")
    if build:
        rows.append(("Build Date", str(build)))
    if status.get("storage_type"):
        rows.append(("Storage Type", str(status["storage_type"])))
    if status.get("cluster_name"):
        rows.append(("Cluster Name", str(status["cluster_name"])))
    if status.get("cluster_id"):
        rows.append(("Cluster ID", str(status["cluster_id"])))
    rows.append(("HA Enabled", go_value(bool(leader.get("ha_enabled")))))
    if leader.get("ha_enabled"):
        rows.append(("HA Cluster", cell(leader.get("leader_cluster_address", ""))))
        rows.append(("HA Mode", "active" if leader.get("is_self") else "standby"))
    out.table(rows)


def cmd_status(ctx: Context) -> int:
    """GET sys/seal-status; exit 0 unsealed, 2 sealed, 1 on error (Vault's ``status`` contract)."""
    with api_errors("Error checking seal status", code=EXIT_USAGE):
        status = ctx.client.json("GET", "sys/seal-status", authenticate=False) or {}
    try:
        print_seal_status(ctx, status)
    except ClientError as exc:
        raise CommandFailed(f"Error checking leader status: {exc}", EXIT_USAGE) from exc
    return EXIT_API if status.get("sealed") else EXIT_OK


def cmd_unseal(ctx: Context) -> int:
    """PUT sys/unseal with a key (argument, ``-`` for stdin, or a hidden prompt) or ``reset``."""
    args = ctx.args
    if args.reset:
        if args.key is not None:
            raise UsageError("Too many arguments (expected 0, got 1)")
        body: dict[str, Any] = {"reset": True}
    else:
        key = key_argument(ctx, args.key, "Unseal Key")
        if not key:
            raise UsageError("Missing unseal key")
        body = {"key": key}
        if args.migrate:
            body["migrate"] = True
    with api_errors("Error unsealing"):
        status = ctx.client.json("PUT", "sys/unseal", json=body, authenticate=False) or {}
        print_seal_status(ctx, status)
    return EXIT_OK


def cmd_seal(ctx: Context) -> int:
    """PUT sys/seal."""
    with api_errors("Error sealing"):
        ctx.client.write("sys/seal")
    ctx.output.line("Success! Vault is sealed.")
    return EXIT_OK


def _print_key_status(out: Output, status: dict[str, Any]) -> None:
    """The three key-status lines, no header, as Vault prints them."""
    if not out.is_table:
        out.json({k: status.get(k) for k in ("term", "install_time", "encryptions")})
        return
    rows = [
        ("Key Term", go_value(status.get("term", 0))),
        ("Install Time", rfc822(str(status.get("install_time", "")))),
    ]
    if "encryptions" in status:
        rows.append(("Encryption Count", go_value(status["encryptions"])))
    out.line(render_table(rows, header=False))


def _key_status(ctx: Context) -> dict[str, Any]:
    body = ctx.client.json("GET", "sys/key-status") or {}
    # sys/* answers copy data to the top level; prefer data when present.
    data = body.get("data") if isinstance(body.get("data"), dict) else body
    return dict(data or {})


def cmd_key_status(ctx: Context) -> int:
    """GET sys/key-status."""
    no_args(len(ctx.args.rest), 0)
    with api_errors("Error reading key status"):
        status = _key_status(ctx)
    _print_key_status(ctx.output, status)
    return EXIT_OK


def cmd_rotate(ctx: Context) -> int:
    """PUT sys/rotate, then print the new key status."""
    no_args(len(ctx.args.rest), 0)
    with api_errors("Error rotating key"):
        ctx.client.write("sys/rotate")
    with api_errors("Error reading key status"):
        status = _key_status(ctx)
    if ctx.output.is_table:
        ctx.output.line("Success! Rotated key")
        ctx.output.line()
    _print_key_status(ctx.output, status)
    return EXIT_OK


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``operator init|unseal|seal|status|rotate|key-status`` and top-level ``status``."""
    from strongroom.cli import migrate, rekey, rewrap, snapshot  # local: they import helpers from this module

    status = sub.add_parser("status", parents=[parent], help="print the seal status (exit 2 when sealed)")
    status.set_defaults(handler=cmd_status)

    op = sub.add_parser("operator", help="operator commands: init, unseal, seal, rekey, rotate ...")
    ops = op.add_subparsers(dest="operator_command", metavar="COMMAND", required=True)

    init = ops.add_parser("init", parents=[parent], help="initialise the server")
    init.add_argument("--key-shares", type=int, default=5, help="number of unseal key shares (default 5)")
    init.add_argument("--key-threshold", type=int, default=3, help="shares needed to unseal (default 3)")
    init.add_argument("--pgp-keys", help="comma-separated public key files, one per share")
    init.add_argument("--root-token-pgp-key", help="public key file to encrypt the root token with")
    add_bool(init, "--status", False, "print the initialisation status (exit 2 when not initialised)")
    init.set_defaults(handler=cmd_init)

    unseal = ops.add_parser("unseal", parents=[parent], help="provide an unseal key share")
    unseal.add_argument("key", nargs="?", help="the key share; '-' reads stdin; omitted: hidden prompt")
    add_bool(unseal, "--reset", False, "discard the unseal progress")
    add_bool(unseal, "--migrate", False, "mark the key for seal migration")
    unseal.set_defaults(handler=cmd_unseal)

    seal = ops.add_parser("seal", parents=[parent], help="seal the server")
    seal.set_defaults(handler=cmd_seal)

    ostatus = ops.add_parser("status", parents=[parent], help="same as 'strongroom status'")
    ostatus.set_defaults(handler=cmd_status)

    rotate = ops.add_parser("rotate", parents=[parent], help="add a new encryption key term")
    rotate.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    rotate.set_defaults(handler=cmd_rotate)
    rewrap.register(ops, parent, rotate)  # --wait, and operator rewrap-status

    key_status = ops.add_parser("key-status", parents=[parent], help="print the encryption key status")
    key_status.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    key_status.set_defaults(handler=cmd_key_status)

    rekey.register(ops, parent)
    migrate.register(ops)
    snapshot.register(ops, parent)
