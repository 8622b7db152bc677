"""The ``strongroom`` console script: ``server`` plus the Vault-style client commands.

``main(argv)`` returns the process exit code. The parser and dispatch live in :mod:`strongroom.cli.app`;
this module only plugs in the ``server`` subcommand, so the client commands can be tested without it.
"""

from __future__ import annotations

import sys

from strongroom.cli import platform, server
from strongroom.cli.app import run


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``strongroom`` console script."""
    return run(argv, extra=[server.register, platform.register])


if __name__ == "__main__":
    sys.exit(main())
