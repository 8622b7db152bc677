"""``strongroom operator rotate --wait`` and ``strongroom operator rewrap-status [--wait]``.

After ``sys/rotate`` the server re-wraps every record of the rotated keyring in the background and then drops
the older terms (docs/operations/platform-key.md). These commands read its progress from
``GET sys/rotate/status`` (an addition to Vault's API) and, with ``--wait``, follow it to the end with a
progress bar on stderr (redrawn in place on a terminal, one line per change otherwise), then print the final
status like ``rewrap-status`` does. Both work in a tenant with ``--namespace``.

Exit codes: 0 done; 2 the server refused, the wait timed out, or records could not be re-wrapped (the older
terms are then kept, and the status says how many).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from strongroom.cli.base import EXIT_API, EXIT_OK, CommandFailed, Context, add_bool, api_errors, no_args
from strongroom.cli.operator import cmd_rotate as rotate_only
from strongroom.cli.output import Output, render_table

STATUS_PATH = "sys/rotate/status"
BAR_WIDTH = 30


def read_status(ctx: Context) -> dict[str, Any]:
    """GET sys/rotate/status; the ``data`` object."""
    body = ctx.client.json("GET", STATUS_PATH) or {}
    data = body.get("data")
    return dict(data) if isinstance(data, dict) else {}


def status_rows(status: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of ``rewrap-status``'s table."""
    total, done = int(status.get("total", 0)), int(status.get("done", 0))
    progress = f"{done}/{total}" if total else f"{done} counted"
    return [
        ("State", str(status.get("state", ""))),
        ("Phase", str(status.get("phase", "")) or "n/a"),
        ("Target Term", str(status.get("term", ""))),
        ("Progress", progress if status.get("state") != "idle" else "n/a"),
        ("Records Re-wrapped", str(status.get("rewrapped", 0))),
        ("Records Failed", str(status.get("failed", 0))),
        ("Readable Terms", "[" + " ".join(str(t) for t in status.get("readable_terms", [])) + "]"),
        ("Dropped Terms", "[" + " ".join(str(t) for t in status.get("dropped_terms", [])) + "]"),
        ("Started", str(status.get("started", "")) or "n/a"),
        ("Finished", str(status.get("finished", "")) or "n/a"),
    ]


def progress_line(status: dict[str, Any]) -> str:
    """One progress-bar line, e.g. ``rewrapping [#########-----]  31% 120/384 records (term 3)``."""
    phase, term = str(status.get("phase", "")), status.get("term", "")
    total, done = int(status.get("total", 0)), int(status.get("done", 0))
    if status.get("state") == "done":
        phase, done = "done", max(done, total)
    if not total:
        return f"{phase:<10} {done} records counted (term {term})"
    share = min(done, total) / total
    filled = int(BAR_WIDTH * share)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"{phase:<10} [{bar}] {int(share * 100):3d}% {min(done, total)}/{total} records (term {term})"


class ProgressBar:
    """Draws progress lines on stderr: in place on a terminal, a new line per change elsewhere."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.tty = bool(getattr(output.err, "isatty", lambda: False)())
        self.last = ""

    def show(self, status: dict[str, Any]) -> None:
        line = progress_line(status)
        if line == self.last:
            return
        self.last = line
        if self.tty:
            self.output.err.write("\r\033[K" + line)
            self.output.err.flush()
        else:
            self.output.error(line)

    def close(self) -> None:
        if self.tty and self.last:
            self.output.err.write("\n")


def wait_done(ctx: Context, term: int) -> dict[str, Any]:
    """Poll the status until the re-wrap toward ``term`` (or a later one) is done; return the final status.

    :raises CommandFailed: the server refused, or ``--timeout`` passed.
    """
    args = ctx.args
    bar = ProgressBar(ctx.output) if ctx.output.is_table else None
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while True:
            with api_errors("Error reading re-wrap status"):
                status = read_status(ctx)
            if bar is not None:
                bar.show(status)
            if status.get("state") == "done" and int(status.get("term", 0)) >= term:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise CommandFailed(f"Error: the re-wrap was still running after {args.timeout:g}s", EXIT_API)
            time.sleep(args.poll_interval)
    finally:
        if bar is not None:
            bar.close()


def _print(ctx: Context, status: dict[str, Any]) -> int:
    if ctx.output.is_table:
        ctx.output.line(render_table(status_rows(status)))
    else:
        ctx.output.json(status)
    if int(status.get("failed", 0)) and status.get("state") == "done":
        ctx.output.error(
            f"Error: {status['failed']} records could not be re-wrapped; the older terms are kept "
            "(see docs/operations/platform-key.md)"
        )
        return EXIT_API
    return EXIT_OK


def cmd_rotate(ctx: Context) -> int:
    """``operator rotate``: PUT sys/rotate; with ``--wait``, follow the re-wrap to its end."""
    if not ctx.args.wait:
        return rotate_only(ctx)
    no_args(len(ctx.args.rest), 0)
    with api_errors("Error rotating key"):
        ctx.client.write("sys/rotate")
    with api_errors("Error reading re-wrap status"):
        term = int(read_status(ctx).get("term", 0))
    if ctx.output.is_table:
        ctx.output.line(f"Success! Rotated key (term {term}); re-wrapping stored records")
    return _print(ctx, wait_done(ctx, term))


def cmd_status(ctx: Context) -> int:
    """``operator rewrap-status``: print the re-wrap status; with ``--wait``, follow it first."""
    no_args(len(ctx.args.rest), 0)
    with api_errors("Error reading re-wrap status"):
        status = read_status(ctx)
    if ctx.args.wait and status.get("state") == "running":
        status = wait_done(ctx, int(status.get("term", 0)))
    return _print(ctx, status)


def _wait_flags(parser: argparse.ArgumentParser, what: str) -> None:
    add_bool(parser, "--wait", False, what)
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between status reads")
    parser.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds (0: never)")


def register(ops: Any, parent: argparse.ArgumentParser, rotate: argparse.ArgumentParser) -> None:
    """Add ``--wait`` to ``operator rotate`` and the ``operator rewrap-status`` command."""
    _wait_flags(rotate, "wait until every stored record is re-wrapped (progress bar on stderr)")
    rotate.set_defaults(handler=cmd_rotate)
    status = ops.add_parser(
        "rewrap-status", parents=[parent], help="print the progress of the re-wrap after the last rotation"
    )
    status.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    _wait_flags(status, "follow a running re-wrap to its end (progress bar on stderr)")
    status.set_defaults(handler=cmd_status)
