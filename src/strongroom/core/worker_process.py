"""What a worker process of ``strongroom server --workers N`` starts with, and its first steps after fork.

Kept apart from :mod:`strongroom.core.workers` (the supervisor's loop) because this code runs in the
child: it must leave nothing of the supervisor's behind (signal handlers, the wake-up pipe, the epoll
set, other workers' links) and must make the worker die with its supervisor.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerStart:
    """What a freshly forked worker is given (inherited through ``fork``, never sent anywhere)."""

    index: int
    """0-based slot number; the same slot keeps its number across restarts."""
    link: socket.socket
    """The worker's end of its supervisor link."""
    listen: socket.socket
    """The listening socket the supervisor bound; every worker accepts on it."""
    dev_init: bool
    """Dev mode: this worker initialises and unseals the store (slot 0 until the node was first unsealed)."""


WorkerMain = Callable[[WorkerStart], int]
"""Runs one worker in the forked child and returns its exit code."""


def detach_from_supervisor(selector: selectors.BaseSelector, close: Sequence[int | socket.socket]) -> None:
    """In a freshly forked worker: undo the supervisor's signal set-up, close its descriptors, and ask the
    kernel for ``SIGTERM`` when the supervisor dies (Linux ``PR_SET_PDEATHSIG``).

    ``SIGINT`` is ignored: Ctrl-C in a terminal reaches the whole process group, and the supervisor stops
    the workers itself. The selector is closed, never unregistered from: its epoll set is shared with the
    supervisor through fork. Exits at once if the supervisor died before the death signal was armed.
    """
    parent = os.getppid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    selector.close()
    for item in close:
        with contextlib.suppress(OSError):
            if isinstance(item, int):
                os.close(item)
            else:
                item.close()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def describe_exit(status: int) -> str:
    """Say how a child ended, from its ``waitpid`` status."""
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
