"""Parser and dispatcher of the ``strongroom`` command (client commands; ``server`` is plugged in).

``run(argv)`` returns the process exit code (``strongroom.cli.main.main`` wraps it). Client commands
accept Vault's single-dash flags (``-format=json``, ``-key-shares=3``) as well as ``--flags``, and exit like
Vault's CLI: 0 success, 1 bad usage or a local error, 2 an error from the server (``status``: 2 means sealed).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from strongroom.cli import kv, operator, policy, token
from strongroom.cli.base import (
    EXIT_USAGE,
    CommandFailed,
    Context,
    Parser,
    http_flags,
    normalise_argv,
    resolve_format,
)
from strongroom.cli.output import Output

# A subcommand registrar such as ``server.register``: gets the subparsers action, adds its parser.
Register = Callable[[Any], None]


def build_parser(extra: Sequence[Register] = ()) -> Parser:
    """Build the whole argument parser; ``extra`` registers further subcommands (``server``)."""
    parser = Parser(
        prog="strongroom",
        description="A key-management server that speaks the HashiCorp Vault HTTP API, and its client.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    parent = http_flags()
    for register in extra:
        register(sub)
    operator.register(sub, parent)
    kv.register(sub, parent)
    token.register(sub, parent)
    policy.register(sub, parent)
    return parser


def run(
    argv: Sequence[str] | None = None,
    *,
    extra: Sequence[Register] = (),
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Parse ``argv`` and run the command; return its exit code. Streams default to the process's."""
    import os

    env = dict(os.environ if environ is None else environ)
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser(extra)
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(normalise_argv(parser, args_list))
        output = Output(resolve_format(args, env), stdout, err)
    except CommandFailed as exc:
        err.write(exc.message + "\n")
        return exc.code
    except SystemExit as exc:  # --help, or argparse's own exits
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    ctx = Context(args=args, output=output, environ=env, stdin=stdin if stdin is not None else sys.stdin)
    try:
        handler = getattr(args, "handler", None)
        if handler is not None:
            code: int = handler(ctx)
            return code
        # Commands registered by other modules (``server``) set ``func`` and take the parsed arguments.
        result = args.func(args)
        return int(result) if result is not None else 0
    except CommandFailed as exc:
        output.error(exc.message)
        return exc.code
    except KeyboardInterrupt:
        output.error("user canceled")
        return EXIT_USAGE
    finally:
        ctx.close()
