"""``strongroom kv ...``: KV v1/v2 commands, shaped like Vault's ``vault kv``.

The KV version and the mount path are discovered the way Vault's CLI does it: ``GET
sys/internal/ui/mounts/<path>`` returns ``data.path`` (the mount, ``secret/``) and ``data.options.version``.
For v2 the API prefixes (``data/``, ``metadata/``, ``delete/``, ``undelete/``, ``destroy/``) are inserted
after the mount; v1 paths are used as given.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from strongroom.cli.base import (
    EXIT_API,
    EXIT_OK,
    CommandFailed,
    Context,
    UsageError,
    api_errors,
    payload,
    read_input,
)
from strongroom.cli.client import ApiError
from strongroom.cli.output import (
    Output,
    data_rows,
    envelope_json,
    field_value,
    pad_equal_signs,
    print_secret,
    print_warnings,
    render_table,
    section_header,
)


def join(*parts: str) -> str:
    """Join path segments like Go's ``path.Join`` (no empty, leading or doubled slashes)."""
    return "/".join(seg for part in parts for seg in part.split("/") if seg)


@dataclass(frozen=True)
class KVPath:
    """A KV path resolved against its mount."""

    mount: str
    """The mount path with a trailing slash (``secret/``), or ``""`` when the server did not say."""
    version: int
    given: str
    """The path as the user gave it, mount included."""

    def api(self, prefix: str) -> str:
        """The API path: for v2 ``mount/<prefix>/rest``, for v1 the path itself."""
        if self.version != 2:
            return join(self.given)
        rest = self.given[len(self.mount) :] if self.given.startswith(self.mount) else ""
        if self.given.rstrip("/") == self.mount.rstrip("/"):
            rest = ""
        return join(self.mount, prefix, rest)


def preflight(ctx: Context, path: str) -> tuple[str, int]:
    """Ask the server which mount serves ``path`` and its KV version (1 when the server cannot say).

    :raises CommandFailed: the server refused (403) or failed.
    """
    try:
        body = ctx.client.json("GET", "sys/internal/ui/mounts/" + join(path))
    except ApiError as exc:
        if exc.status == 404:
            # Old servers lack the endpoint; Vault's CLI then assumes KV v1, and so do we.
            return "", 1
        raise CommandFailed(f"Error determining the KV version of {path}: {exc}", EXIT_API) from exc
    data = payload(body)
    mount = str(data.get("path") or "")
    options = data.get("options") or {}
    version = 2 if isinstance(options, dict) and str(options.get("version", "")) == "2" else 1
    return mount, version


def resolve(ctx: Context, path: str | None, mount_flag: str | None) -> KVPath:
    """Resolve the positional PATH and ``--mount`` into a :class:`KVPath`."""
    if path is None:
        if not mount_flag:
            raise UsageError("Not enough arguments (expected 1, got 0)")
        path = ""
    with api_errors("Error determining KV version"):
        if mount_flag:
            mount, version = preflight(ctx, mount_flag)
            mount = join(mount or mount_flag) + "/"
            return KVPath(mount, version, join(mount, path) + ("/" if path.endswith("/") else ""))
        mount, version = preflight(ctx, path)
    return KVPath(mount, version, path.lstrip("/"))


def parse_data(ctx: Context, items: list[str]) -> dict[str, Any]:
    """Build a data map from Vault-style arguments.

    ``-`` alone reads a JSON object from stdin, ``@file`` alone a JSON object from a file, ``k=v`` a string,
    ``k=@file`` the file's text, ``k=-`` stdin's text; a leading backslash escapes ``@``.
    """
    data: dict[str, Any] = {}
    for item in items:
        if item == "-" or (item.startswith("@") and "=" not in item):
            text = read_input(ctx, item if item == "-" else item[1:])
            try:
                loaded = json.loads(text)
            except ValueError as exc:
                raise UsageError(f"Failed to parse JSON input: {exc}") from exc
            if not isinstance(loaded, dict):
                raise UsageError("Failed to parse JSON input: expected a JSON object")
            data.update(loaded)
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"Failed to parse K=V data: invalid key/value pair {item!r}")
        if value == "-":
            value = ctx.stdin.read()
        elif value.startswith("@"):
            value = read_input(ctx, value[1:])
        elif value.startswith("\\@"):
            value = value[1:]
        data[key] = value
    return data


def print_path(out: Output, title: str, path: str) -> None:
    """Print Vault's ``= Secret Path =`` banner."""
    out.line(pad_equal_signs(title, len(path)))
    out.line(path)
    out.line()


def print_section(out: Output, title: str, data: dict[str, Any]) -> None:
    """Print a titled table of ``data``."""
    out.line(section_header(title, data))
    out.line(render_table(data_rows(data)))


def print_field(out: Output, data: dict[str, Any], name: str) -> int:
    """``-field``: the raw value, or exit 1 when the field is absent (Vault's behaviour)."""
    if name not in data:
        raise CommandFailed(f'Field "{name}" not present in secret', 1)
    out.raw(field_value(data[name]))
    return EXIT_OK


def _v2_only(kv: KVPath, what: str) -> None:
    if kv.version != 2:
        raise CommandFailed(f"{what} not supported on KV Version 1", 1)


def cmd_get(ctx: Context) -> int:
    """Read a secret (v2: latest or ``--version``)."""
    args, out = ctx.args, ctx.output
    kv = resolve(ctx, args.path, args.mount)
    path = kv.api("data")
    params = {"version": str(args.version)} if args.version is not None and kv.version == 2 else None
    with api_errors(f"Error reading {path}"):
        secret = _read_allowing_data(ctx, path, params)
    if secret is None:
        raise CommandFailed(f"No value found at {path}", EXIT_API)
    data = payload(secret)
    inner = data.get("data") if kv.version == 2 else data
    if args.field:
        return print_field(out, inner if isinstance(inner, dict) else {}, args.field)
    if not out.is_table:
        out.json(envelope_json(secret))
        return EXIT_OK
    if kv.version != 2:
        # Vault prints a v1 secret as a plain table: refresh_interval (from lease_duration), then the data.
        print_secret(out, secret)
        return EXIT_OK
    print_warnings(out, secret)
    print_path(out, "Secret Path", path)
    meta = data.get("metadata")
    if isinstance(meta, dict):
        print_section(out, "Metadata", meta)
    if isinstance(inner, dict):
        out.line()
        print_section(out, "Data", inner)
    return EXIT_OK


def _read_allowing_data(ctx: Context, path: str, params: dict[str, str] | None) -> dict[str, Any] | None:
    """GET that keeps a 404 carrying data (KV v2's deleted or destroyed version), as Vault's kv get does."""
    try:
        return ctx.client.json("GET", path, params=params)
    except ApiError as exc:
        if exc.status != 404:
            raise
        body = exc.body if isinstance(exc.body, dict) else {}
        if body.get("data") or body.get("warnings"):
            return body
        return None


def _write(ctx: Context, kv: KVPath, path: str, body: Any, method: str, headers: Any = None) -> int:
    out = ctx.output
    with api_errors(f"Error writing data to {path}"):
        try:
            secret = ctx.client.json(method, path, json=body, headers=headers)
        except ApiError as exc:
            if method == "PATCH" and exc.status == 404 and not exc.errors:
                raise CommandFailed(f"No value found at {path}", EXIT_API) from exc
            raise
    if secret is None:
        out.line(f"Success! Data written to: {path}")
        return EXIT_OK
    if ctx.args.field:
        return print_field(out, payload(secret), ctx.args.field)
    if kv.version == 2 and out.is_table:
        print_warnings(out, secret)
        print_path(out, "Secret Path", path)
        print_section(out, "Metadata", payload(secret))
        return EXIT_OK
    print_secret(out, secret)
    return EXIT_OK


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {"cas": args.cas} if args.cas is not None and args.cas >= 0 else {}


def cmd_put(ctx: Context) -> int:
    """Write a secret (v2: a new version, ``--cas`` for check-and-set)."""
    args = ctx.args
    kv = resolve(ctx, args.path, args.mount)
    data = parse_data(ctx, args.data)
    if not data:
        raise UsageError("Must supply data")
    if kv.version == 2:
        return _write(ctx, kv, kv.api("data"), {"data": data, "options": _options(args)}, "PUT")
    return _write(ctx, kv, kv.api("data"), data, "PUT")


def cmd_patch(ctx: Context) -> int:
    """Merge new keys into the latest v2 version with an HTTP PATCH (JSON merge patch)."""
    args = ctx.args
    kv = resolve(ctx, args.path, args.mount)
    if kv.version != 2:
        raise CommandFailed("K/V engine mount must be version 2 for patch support", EXIT_API)
    data = parse_data(ctx, args.data)
    if not data:
        raise UsageError("Must supply data")
    headers = {"Content-Type": "application/merge-patch+json"}
    return _write(ctx, kv, kv.api("data"), {"data": data, "options": _options(args)}, "PATCH", headers)


def _versions(args: argparse.Namespace) -> list[int]:
    versions: list[int] = []
    for item in args.versions or []:
        for part in item.split(","):
            if part.strip():
                try:
                    versions.append(int(part))
                except ValueError as exc:
                    raise UsageError(f"invalid version {part!r}") from exc
    return versions


def cmd_delete(ctx: Context) -> int:
    """Soft-delete the latest version, or ``--versions`` (v2); delete the key (v1)."""
    args = ctx.args
    kv = resolve(ctx, args.path, args.mount)
    versions = _versions(args)
    if kv.version == 2 and versions:
        path = kv.api("delete")
        with api_errors(f"Error deleting {path}"):
            ctx.client.json("PUT", path, json={"versions": versions})
    else:
        path = kv.api("data")
        with api_errors(f"Error deleting {path}"):
            ctx.client.delete(path)
    ctx.output.line(f"Success! Data deleted (if it existed) at: {path}")
    return EXIT_OK


def _versions_op(ctx: Context, prefix: str, verb: str) -> int:
    args = ctx.args
    kv = resolve(ctx, args.path, args.mount)
    _v2_only(kv, verb.capitalize())
    versions = _versions(args)
    if not versions:
        raise UsageError(f'No versions provided, use the "-versions" flag to specify the versions to {verb}.')
    path = kv.api(prefix)
    with api_errors(f"Error writing data to {path}"):
        ctx.client.json("PUT", path, json={"versions": versions})
    ctx.output.line(f"Success! Data written to: {path}")
    return EXIT_OK


def cmd_undelete(ctx: Context) -> int:
    """Restore soft-deleted v2 versions."""
    return _versions_op(ctx, "undelete", "undelete")


def cmd_destroy(ctx: Context) -> int:
    """Permanently destroy v2 versions."""
    return _versions_op(ctx, "destroy", "destroy")


def cmd_list(ctx: Context) -> int:
    """List keys under a path (v2 lists ``metadata/``)."""
    args, out = ctx.args, ctx.output
    kv = resolve(ctx, args.path, args.mount)
    path = kv.api("metadata")
    with api_errors(f"Error listing {path}"):
        secret = ctx.client.list(path)
    keys = payload(secret).get("keys")
    if not isinstance(keys, list) or not keys:
        raise CommandFailed(f"No value found at {path}", EXIT_API)
    if not out.is_table:
        out.json(keys)
        return EXIT_OK
    print_warnings(out, secret)
    out.line("Keys")
    out.line("----")
    for key in keys:
        out.line(str(key))
    return EXIT_OK


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``kv`` command tree."""
    from strongroom.cli import kv_metadata  # local: kv_metadata imports helpers from this module

    kv = sub.add_parser("kv", help="read and write KV secrets (v1 and v2)")
    kvs = kv.add_subparsers(dest="kv_command", metavar="COMMAND", required=True)

    def leaf(name: str, func: Any, help_text: str, *, data: bool = False, field: bool = False) -> Any:
        p = kvs.add_parser(name, parents=[parent], help=help_text)
        p.add_argument("--mount", help="the KV mount; PATH is then relative to it")
        p.add_argument("path", nargs="?", help="secret path (its first segments name the mount)")
        if data:
            p.add_argument("data", nargs="*", help="K=V pairs, K=@file, K=-, @file.json or - (JSON)")
            p.add_argument("--cas", type=int, default=None, help="check-and-set version (v2)")
        if field:
            p.add_argument("--field", help="print only this field, raw")
        p.set_defaults(handler=func)
        return p

    get = leaf("get", cmd_get, "read a secret", field=True)
    get.add_argument("--version", type=int, default=None, help="the version to read (v2)")
    leaf("put", cmd_put, "write a secret", data=True, field=True)
    leaf("patch", cmd_patch, "update keys of a v2 secret (merge patch)", data=True, field=True)
    for name, func, text in (
        ("delete", cmd_delete, "delete the latest version or --versions"),
        ("undelete", cmd_undelete, "undelete --versions (v2)"),
        ("destroy", cmd_destroy, "permanently destroy --versions (v2)"),
    ):
        p = leaf(name, func, text)
        p.add_argument("--versions", action="append", help="comma-separated version numbers")
    leaf("list", cmd_list, "list keys under a path")
    kv_metadata.register(kvs, parent)
