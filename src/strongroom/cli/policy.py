"""``strongroom policy list|read|write|delete|fmt``, shaped like Vault's ``vault policy``.

Policies are sent to ``sys/policies/acl/NAME`` as text; the server parses them. ``fmt`` rewrites an HCL
policy file in canonical layout (two-space indent, one attribute per line, ``path "..." {}`` blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Any

import hcl

from strongroom.cli.base import EXIT_API, EXIT_OK, CommandFailed, Context, UsageError, api_errors, payload
from strongroom.cli.base import read_input as read_source


def cmd_list(ctx: Context) -> int:
    """LIST sys/policies/acl: one name per line."""
    with api_errors("Error listing policies"):
        secret = ctx.client.list("sys/policies/acl")
    keys = payload(secret).get("keys") or []
    if ctx.output.is_table:
        for name in keys:
            ctx.output.line(str(name))
    else:
        ctx.output.json(keys)
    return EXIT_OK


def cmd_read(ctx: Context) -> int:
    """GET sys/policies/acl/NAME and print the policy text."""
    name = ctx.args.name.strip().lower()
    with api_errors(f"Error reading policy named {name}"):
        secret = ctx.client.read(f"sys/policies/acl/{name}")
    if secret is None:
        raise CommandFailed(f"No policy named: {name}", EXIT_API)
    rules = str(payload(secret).get("policy", ""))
    if ctx.output.is_table:
        ctx.output.line(rules.rstrip("\n"))
    else:
        ctx.output.json({"policy": rules})
    return EXIT_OK


def cmd_write(ctx: Context) -> int:
    """PUT sys/policies/acl/NAME from a file or ``-`` (stdin)."""
    name = ctx.args.name.strip().lower()
    rules = read_source(ctx, ctx.args.file)
    with api_errors("Error uploading policy"):
        ctx.client.json("PUT", f"sys/policies/acl/{name}", json={"policy": rules})
    ctx.output.line(f"Success! Uploaded policy: {name}")
    return EXIT_OK


def cmd_delete(ctx: Context) -> int:
    """DELETE sys/policies/acl/NAME."""
    name = ctx.args.name.strip().lower()
    with api_errors(f"Error deleting {name}"):
        ctx.client.delete(f"sys/policies/acl/{name}")
    ctx.output.line(f"Success! Deleted policy: {name}")
    return EXIT_OK


def _has_comments(text: str) -> bool:
    """True when the HCL source has comments, which pyhcl drops (so formatting would lose them)."""
    from hcl.lexer import Lexer

    lexer = Lexer(export_comments="ALL")
    lexer.input(text)
    while (token := lexer.token()) is not None:
        if token.type in ("COMMENT", "MULTICOMMENT"):
            return True
    return False


def _hcl_value(value: Any, indent: int) -> str:
    """Render one HCL value (strings, numbers, booleans, lists, objects)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_hcl_value(v, indent) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = "  " * (indent + 1)
        inner = "\n".join(f"{pad}{json.dumps(k)} = {_hcl_value(v, indent + 1)}" for k, v in value.items())
        return "{\n" + inner + "\n" + "  " * indent + "}"
    raise UsageError(f"cannot format HCL value of type {type(value).__name__}")


def format_policy(text: str) -> str:
    """Canonical HCL for a policy: top-level labelled blocks, then attributes.

    :raises UsageError: the text is not HCL, or it has comments that reformatting would drop.
    """
    try:
        tree = hcl.loads(text)
    except ValueError as exc:
        raise UsageError(f"failed to parse policy: {exc}") from exc
    if _has_comments(text):
        raise UsageError("the policy has comments, which this formatter would drop; not rewriting it")
    blocks: list[str] = []
    for key, value in tree.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            # `path "x" { ... }` parses to {"path": {"x": {...}}}: print it back as labelled blocks.
            for label, body in value.items():
                lines = [f"  {k} = {_hcl_value(v, 1)}" for k, v in body.items()]
                inner = "\n".join(lines)
                blocks.append(
                    f"{key} {json.dumps(label)} {{\n{inner}\n}}"
                    if lines
                    else f"{key} {json.dumps(label)} {{}}"
                )
        else:
            blocks.append(f"{key} = {_hcl_value(value, 0)}")
    return "\n\n".join(blocks) + "\n"


def cmd_fmt(ctx: Context) -> int:
    """Rewrite an HCL policy file in canonical layout, atomically."""
    path = ctx.args.file
    formatted = format_policy(read_source(ctx, path))
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
        # Write beside the file and rename, so an interrupted run never leaves half a policy behind.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".policy-fmt-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(formatted)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"Error writing {path}: {exc.strerror}") from exc
    ctx.output.line(f"Success! Formatted policy: {path}")
    return EXIT_OK


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``policy`` command tree."""
    policy = sub.add_parser("policy", help="manage ACL policies")
    policies = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    lst = policies.add_parser("list", parents=[parent], help="list policy names")
    lst.set_defaults(handler=cmd_list)
    read = policies.add_parser("read", parents=[parent], help="print a policy")
    read.add_argument("name")
    read.set_defaults(handler=cmd_read)
    write = policies.add_parser("write", parents=[parent], help="upload a policy from FILE or - (stdin)")
    write.add_argument("name")
    write.add_argument("file", metavar="FILE")
    write.set_defaults(handler=cmd_write)
    delete = policies.add_parser("delete", parents=[parent], help="delete a policy")
    delete.add_argument("name")
    delete.set_defaults(handler=cmd_delete)
    fmt = policies.add_parser("fmt", parents=[parent], help="rewrite a policy file in canonical layout")
    fmt.add_argument("file", metavar="FILE")
    fmt.set_defaults(handler=cmd_fmt)
