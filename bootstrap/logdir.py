"""What every container log directory holds, named once for the three programs that use it: PID 1
writes the journal and holds the liveness lock, the metrics helper counts the journal's exit
causes, and `bootstrap logs prune` on the node tells live directories from dead ones by the lock.
"""
from __future__ import annotations

import fcntl

RECORD_FILE = ".bootstrap.jsonl"  # the start/exit journal, one JSON line per record
LOCK_FILE = ".bootstrap.lock"  # flock'd by PID 1 while the directory is live (pid1/loglock.py)

# Why the app ended, as an exit record's `cause` says (docs/contract.md, "Records").
EXITED, SIGNAL, STOPPED, KILLED_AFTER_TIMEOUT = "exited", "signal", "stopped", "killed-after-timeout"
EXIT_CAUSES = (EXITED, SIGNAL, STOPPED, KILLED_AFTER_TIMEOUT)


def is_locked(fd: int) -> bool:
    """For the pruner: a non-blocking shared attempt, released at once, never disturbs a holder."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False
