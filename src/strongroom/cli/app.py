"""Parser and dispatcher of the ``strongroom`` command (client commands; ``server`` is plugged in).

``run(argv)`` returns the process exit code (``strongroom.cli.main.main`` wraps it). Client commands
accept Vault's single-dash flags (``-format=json``, ``-key-shares=3``) as well as ``--flags``, and exit like
Vault's CLI: 0 success, 1 bad usage or a local error, 2 an error from the server (``status``: 2 means sealed).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from strongroom.cli import iam, kv, operator, policy, token
from strongroom.cli.base import (
    EXIT_USAGE,
    CommandFailed,
    Context,
    Parser,
    http_flags,
    normalise_argv,
    resolve_format,
)
from strongroom.cli.output import Output, OutputFailed

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
    iam.register(sub, parent)
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
        if handler is None:
            # Commands registered by other modules (``server``) set ``func`` and take the parsed arguments.
            result = args.func(args)
            return int(result) if result is not None else 0
        code: int = handler(ctx)
        output.flush()
        return code
    except CommandFailed as exc:
        return _report(output, exc.message, exc.code)
    except OutputFailed as exc:
        return _output_failed(output, exc)
    except KeyboardInterrupt:
        return _report(output, "user canceled", EXIT_USAGE)
    finally:
        ctx.close()


def _report(output: Output, message: str, code: int) -> int:
    """Print an error line; a failing stderr cannot be reported anywhere, so it only keeps the code."""
    with contextlib.suppress(OutputFailed):
        output.error(message)
    return code


def _output_failed(output: Output, exc: OutputFailed) -> int:
    """A reader that went away (``strongroom kv get ... | head``) is not an error worth a message; a full
    disk is. Either way the command failed locally (exit 1), and stdout is pointed at /dev/null so the
    interpreter's final flush does not print a second traceback."""
    try:
        target = output.out.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, target)
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (in-process use, tests): nothing will flush it later
        pass
    if isinstance(exc.cause, BrokenPipeError):
        return EXIT_USAGE
    return _report(output, f"Error writing output: {exc.cause.strerror or exc.cause}", EXIT_USAGE)
