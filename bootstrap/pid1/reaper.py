"""Reaping: collect every exited child, the app, the checker and orphans alike.

SIGCHLDs merge, so one wake-up may stand for many exits: loop on waitpid(-1, WNOHANG) until
it reports nothing left (0) or no children at all (ECHILD).
"""
from __future__ import annotations

import os

from bootstrap import procs

PR_SET_CHILD_SUBREAPER = 36


def reap() -> list[tuple[int, int]]:
    """Returns (pid, exit code) for every child that has exited; negative code = killed by signal."""
    reaped = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        reaped.append((pid, os.waitstatus_to_exitcode(status)))
    return reaped


def become_subreaper() -> bool:
    """When not PID 1, orphans of the app must still come to us, not to the host's init."""
    import ctypes  # only when not PID 1

    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def group_alive(pgid: int) -> bool:
    return procs.exists(-pgid)
