"""``strongroom iam``: the platform operator's side of the managed-service flow (``docs/tenants.md``).

* ``iam tenants create NAME [--ttl D]``: ``POST sys/iam/tenants/NAME``, an uninitialised tenant and its
  Administrator and User tokens;
* ``iam tenants list|read NAME|delete NAME``;
* ``iam issue --tenant T --role admin|user [--ttl D]``: ``POST sys/iam/tokens``;
* ``iam revoke --revocation-id ID`` or ``--token T`` (``-``: standard input): ``POST sys/iam/revoke``.

They talk HTTP with the platform root token (``VAULT_TOKEN``), like every client command. ``--field``
prints one value raw, for scripts (``ADMIN=$(strongroom iam issue ... --field token)``). Tokens are
printed because that is what these commands are for: hand them over through a channel fit for secrets.
"""

from __future__ import annotations

import argparse
from typing import Any

from strongroom.cli.base import EXIT_API, EXIT_OK, CommandFailed, Context, UsageError, api_errors, payload
from strongroom.cli.output import data_rows, field_value, render_table


def _show(ctx: Context, data: dict[str, Any]) -> int:
    field = getattr(ctx.args, "field", None)
    if field:
        if field not in data:
            raise CommandFailed(f'Field "{field}" not present in the response', 1)
        ctx.output.raw(field_value(data[field]))
        return EXIT_OK
    if ctx.output.is_table:
        ctx.output.line(render_table(data_rows(data)))
    else:
        ctx.output.json(data)
    return EXIT_OK


def _ttl(ctx: Context) -> dict[str, Any]:
    return {"ttl": ctx.args.ttl} if ctx.args.ttl else {}


def cmd_tenant_create(ctx: Context) -> int:
    """Create a tenant; print its tokens."""
    name = ctx.args.name
    with api_errors(f"Error creating tenant {name}"):
        body = ctx.client.write(f"sys/iam/tenants/{name}", _ttl(ctx), method="POST")
    return _show(ctx, payload(body))


def cmd_tenant_list(ctx: Context) -> int:
    """List tenants (one per line)."""
    with api_errors("Error listing tenants"):
        body = ctx.client.list("sys/iam/tenants")
    keys = payload(body).get("keys") or []
    if ctx.output.is_table:
        for key in keys:
            ctx.output.line(str(key))
    else:
        ctx.output.json(keys)
    return EXIT_OK


def cmd_tenant_read(ctx: Context) -> int:
    """Show a tenant (namespace fields, initialised, sealed)."""
    name = ctx.args.name
    with api_errors(f"Error reading tenant {name}"):
        body = ctx.client.read(f"sys/iam/tenants/{name}")
    if body is None:
        raise CommandFailed(f"No tenant named: {name}", EXIT_API)
    return _show(ctx, payload(body))


def cmd_tenant_delete(ctx: Context) -> int:
    """Delete a sealed tenant."""
    name = ctx.args.name
    with api_errors(f"Error deleting tenant {name}"):
        body = ctx.client.delete(f"sys/iam/tenants/{name}")
    for warning in (body or {}).get("warnings") or []:
        ctx.output.error(f"WARNING! {warning}")
    ctx.output.line(f"Success! Deletion of tenant {name} scheduled")
    return EXIT_OK


def cmd_issue(ctx: Context) -> int:
    """Issue an Administrator or User token for a tenant."""
    args = ctx.args
    with api_errors("Error issuing the token"):
        body = ctx.client.write(
            "sys/iam/tokens", {"tenant": args.tenant, "role": args.role, **_ttl(ctx)}, method="POST"
        )
    return _show(ctx, payload(body))


def cmd_revoke(ctx: Context) -> int:
    """Revoke a token (and every token attenuated from it) by revocation id or by the token itself."""
    args = ctx.args
    if (args.revocation_id is None) == (args.token is None):
        raise UsageError("Give exactly one of --revocation-id or --token")
    if args.token is not None:
        text = ctx.stdin.read() if args.token == "-" else args.token
        request: dict[str, Any] = {"token": text.strip()}
    else:
        request = {"revocation_id": args.revocation_id}
    with api_errors("Error revoking"):
        body = ctx.client.write("sys/iam/revoke", request, method="POST")
    return _show(ctx, payload(body))


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``iam`` command tree."""
    iam = sub.add_parser("iam", help="platform IAM: tenants and their biscuit tokens")
    commands = iam.add_subparsers(dest="iam_command", metavar="COMMAND", required=True)

    def leaf(parser: Any, name: str, func: Any, help_text: str, *, field: bool = False) -> Any:
        p = parser.add_parser(name, parents=[parent], help=help_text)
        if field:
            p.add_argument("--field", help="print only this field, raw")
        p.set_defaults(handler=func)
        return p

    issue = leaf(
        commands, "issue", cmd_issue, "issue an Administrator or User token for a tenant", field=True
    )
    issue.add_argument("--tenant", required=True, help="the tenant (its namespace path)")
    issue.add_argument("--role", required=True, choices=("admin", "user"))
    issue.add_argument("--ttl", help='lifetime, e.g. "24h" (default: 720h)')
    revoke = leaf(
        commands, "revoke", cmd_revoke, "revoke a token and every token attenuated from it", field=True
    )
    revoke.add_argument("--revocation-id", help="hex revocation id (strongroom token inspect shows them)")
    revoke.add_argument("--token", help="the token itself ('-': standard input); revokes its last block")

    tenants = commands.add_parser("tenants", help="create, list, read and delete tenants")
    tenant_commands = tenants.add_subparsers(dest="tenants_command", metavar="COMMAND", required=True)
    create = leaf(
        tenant_commands,
        "create",
        cmd_tenant_create,
        "create an uninitialised tenant and its tokens",
        field=True,
    )
    create.add_argument("name")
    create.add_argument("--ttl", help='lifetime of the tokens, e.g. "24h" (default: 720h)')
    leaf(tenant_commands, "list", cmd_tenant_list, "list tenants")
    read = leaf(tenant_commands, "read", cmd_tenant_read, "show a tenant", field=True)
    read.add_argument("name")
    delete = leaf(tenant_commands, "delete", cmd_tenant_delete, "delete a sealed tenant")
    delete.add_argument("name")
