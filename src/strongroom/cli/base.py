"""Plumbing shared by the client commands: common flags, argv normalisation, errors and exit codes.

Exit codes follow Vault's CLI (``command/base.go`` and each command's ``Run``): 0 success, 1 a local
problem (bad flags or arguments, unreadable file), 2 an error from the server or the connection to it.
``status``-like commands use 2 for "sealed"/"not initialised" and 1 for errors instead, as Vault does.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

from strongroom.cli.client import ApiError, ClientError, ClientSettings, VaultClient, parse_bool
from strongroom.cli.output import FORMATS, Output

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_API = 2

Handler = Callable[["Context"], int]


class CommandFailed(Exception):
    """Stop the command: print ``message`` to stderr and exit with ``code``."""

    def __init__(self, message: str, code: int = EXIT_API) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(CommandFailed):
    """Bad flags or arguments (exit 1, like Vault)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting with argparse's code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n\n{self.format_usage().strip()}")


@dataclass
class Context:
    """What a command handler gets: parsed arguments, the output, and a lazily made client."""

    args: argparse.Namespace
    output: Output
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    _client: VaultClient | None = None

    @property
    def client(self) -> VaultClient:
        """The HTTP client, built from flags and the environment on first use."""
        if self._client is None:
            try:
                settings = ClientSettings.from_env(
                    self.environ,
                    address=getattr(self.args, "address", None),
                    namespace=getattr(self.args, "namespace", None),
                    ca_cert=getattr(self.args, "ca_cert", None),
                    skip_verify=getattr(self.args, "tls_skip_verify", None),
                )
                self._client = VaultClient(settings)
            except ClientError as exc:
                raise CommandFailed(str(exc), EXIT_API) from exc
        return self._client

    def close(self) -> None:
        """Close the client if one was made."""
        if self._client is not None:
            self._client.close()


@contextmanager
def api_errors(prefix: str, code: int = EXIT_API) -> Iterator[None]:
    """Turn client failures inside the block into :class:`CommandFailed` with Vault's ``prefix: error``."""
    try:
        yield
    except (ApiError, ClientError) as exc:
        raise CommandFailed(f"{prefix}: {exc}", code) from exc


def http_flags() -> argparse.ArgumentParser:
    """The parent parser every client command inherits: connection and output flags."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("HTTP options")
    group.add_argument("--address", help="server address (default: $STRONGROOM_ADDR, $VAULT_ADDR)")
    group.add_argument(
        "--namespace", "--ns", dest="namespace", help="namespace (default: $STRONGROOM_NAMESPACE)"
    )
    group.add_argument("--ca-cert", help="PEM file of CA certificates to verify the server with")
    group.add_argument(
        "--tls-skip-verify",
        action=GoBool,
        default=None,
        help="do not verify the server certificate (insecure)",
    )
    out = parent.add_argument_group("Output options")
    out.add_argument("--format", choices=FORMATS, default=None, help="output format (default: table)")
    return parent


class GoBool(argparse.Action):
    """A Go-style boolean flag: ``--x`` sets it, ``--no-x`` (or ``--x=false``) clears it.

    argparse's BooleanOptionalAction treats every option starting with ``--no-`` as the negation, which
    breaks Vault flags such as ``-no-default-policy``; this action only negates the names it generated.
    """

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        default: bool | None = False,
        required: bool = False,
        help: str | None = None,
    ) -> None:
        self.positive = tuple(option_strings)
        negative = [negation(o) for o in option_strings if o.startswith("--")]
        super().__init__(
            [*option_strings, *negative], dest, nargs=0, default=default, required=required, help=help
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, option in self.positive)

    def format_usage(self) -> str:
        return self.positive[0]


def negation(option: str) -> str:
    """The clearing form of a ``--flag``."""
    return "--no-" + option[2:]


def add_bool(parser: argparse.ArgumentParser, name: str, default: bool | None, help_text: str) -> None:
    """Add a :class:`GoBool` flag; ``--x=true|false`` is rewritten by :func:`normalise_argv`."""
    parser.add_argument(name, action=GoBool, default=default, help=help_text)


def _option_actions(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    """Every option string of ``parser`` and its subparsers, with its action."""
    for action in parser._actions:
        for option in action.option_strings:
            yield option, action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _option_actions(sub)


_SINGLE_DASH = re.compile(r"^-([A-Za-z][A-Za-z0-9-]+)(=.*)?$")


def normalise_argv(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """Accept Vault's Go-style flags: ``-format=json`` -> ``--format=json``, ``-x=false`` -> ``--no-x``.

    Only names the parser knows are rewritten, so a value such as ``-`` (stdin) or a negative number passes
    through untouched; nothing after ``--`` is touched.
    """
    known = dict(_option_actions(parser))
    out: list[str] = []
    passthrough = False
    for arg in argv:
        if passthrough or arg == "--":
            passthrough = True
            out.append(arg)
            continue
        match = _SINGLE_DASH.match(arg)
        if match and f"--{match.group(1)}" in known:
            arg = "-" + arg
        name, eq, value = arg.partition("=")
        action = known.get(name) if name.startswith("--") else None
        if eq and isinstance(action, GoBool) and name in action.positive:
            try:
                truth = parse_bool(value, name)
            except ClientError as exc:
                raise UsageError(f"invalid boolean value {value!r} for {name}") from exc
            arg = name if truth else negation(name)
        out.append(arg)
    return out


def resolve_format(args: argparse.Namespace, environ: dict[str, str]) -> str:
    """``--format``, else ``$STRONGROOM_FORMAT``/``$VAULT_FORMAT``, else table."""
    fmt = getattr(args, "format", None) or environ.get("STRONGROOM_FORMAT") or environ.get("VAULT_FORMAT")
    fmt = (fmt or "table").lower()
    if fmt not in FORMATS:
        raise UsageError(f"Invalid output format: {fmt}")
    return fmt


def read_input(ctx: Context, source: str) -> str:
    """Read ``-`` (stdin) or a file path; a missing file is a usage error."""
    if source == "-":
        return ctx.stdin.read()
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"Error reading {source}: {exc.strerror}") from exc


def no_args(count: int, expected: int) -> None:
    """Check the number of positional arguments with Vault's wording."""
    if count != expected:
        relation = "Not enough" if count < expected else "Too many"
        raise UsageError(f"{relation} arguments (expected {expected}, got {count})")


def key_values(items: list[str] | None, what: str) -> dict[str, str] | None:
    """Parse repeated ``key=value`` flags into a map (``None`` when none were given).

    Raises:
        UsageError: an item has no ``=`` or an empty key.
    """
    if not items:
        return None
    result: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"invalid {what} {item!r}: expected key=value")
        result[key] = value
    return result


def payload(body: dict[str, Any] | None) -> dict[str, Any]:
    """The ``data`` object of a response envelope, or ``{}``."""
    if body and isinstance(body.get("data"), dict):
        data: dict[str, Any] = body["data"]
        return data
    return {}
