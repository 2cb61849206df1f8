"""Facts about processes that PID 1, its helpers and the run-dir readers share."""
from __future__ import annotations

import os
import signal

# Every signal a process can catch or block: what PID 1 blocks and forwards, and what a child
# gets back at its default disposition before exec.
CATCHABLE = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


def exists(pid: int) -> bool:
    """The process (or, for a negative pid, the process group -pid) exists. A zombie exists
    until it is reaped; one we may not signal (EPERM) exists too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
