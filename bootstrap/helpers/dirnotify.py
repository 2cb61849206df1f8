"""Directory change notification for the config watcher, with the kernel's dnotify (fcntl F_NOTIFY):
one open descriptor per watched directory, and a real-time signal queued on every change in it,
taken synchronously with sigtimedwait (the signal stays blocked, so it never interrupts anything).

Why not inotify through watchdog: it costs the watcher process about 6 MiB (ctypes, threading,
logging and watchdog itself, imported after the fork, plus an observer and an emitter thread), in
every pod, where the budget is 1 MB. `fcntl` and `signal` are built into the interpreter and
already loaded by PID 1, so this module adds almost nothing. dnotify sees the same changes for
this job: a file created, written, removed or renamed in a watched directory (the kubelet's
`..data` rename included). It does not see changes inside a subdirectory, so every directory under
a layer is watched; nor reads, so hashing the files wakes nothing. Attribute changes are not asked
for: they never change the content.

If the real-time signal queue overflows (RLIMIT_SIGPENDING), the kernel sends SIGIO instead; both
are taken, and any of them only means "look again". The signals are sent to the thread that watches
(F_SETOWN_EX), never to the process: a thread that does not block them would be ended by one.
"""
from __future__ import annotations

import _thread
import fcntl
import os
import signal
import struct

from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

NOTIFY_SIGNAL = signal.SIGRTMIN + 5  # not one the app or the agent uses: it is only ever queued here
WAKE_SIGNALS = frozenset({NOTIFY_SIGNAL, signal.SIGIO})
# <fcntl.h> on Linux, not in Python's fcntl module: F_SETOWN_EX with F_OWNER_TID aims a
# descriptor's signals at one thread.
F_SETOWN_EX, F_OWNER_TID = 15, 0
EVENTS = fcntl.DN_CREATE | fcntl.DN_MODIFY | fcntl.DN_DELETE | fcntl.DN_RENAME | fcntl.DN_MULTISHOT


class DirNotify:
    """Watches a set of directories; `wait` says whether anything changed in them."""

    def __init__(self) -> None:
        self.fds: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) of a directory -> its descriptor
        # Blocked before the first F_NOTIFY: an unblocked real-time signal would end the process.
        signal.pthread_sigmask(signal.SIG_BLOCK, WAKE_SIGNALS)

    def watch(self, directories: Iterable[str]) -> list[str]:
        """Watches exactly these directories from now on; returns the ones it could not watch."""
        wanted: dict[tuple[int, int], str] = {}
        failed = []
        for path in directories:
            try:
                st = os.stat(path)
            except OSError:
                failed.append(path)
                continue
            wanted.setdefault((st.st_dev, st.st_ino), path)
        for key in set(self.fds) - set(wanted):
            os.close(self.fds.pop(key))
        for key, path in wanted.items():
            if key in self.fds:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                failed.append(path)
                continue
            try:
                fcntl.fcntl(fd, fcntl.F_SETSIG, NOTIFY_SIGNAL)
                fcntl.fcntl(fd, fcntl.F_NOTIFY, EVENTS)  # this makes the process the owner: after it,
                fcntl.fcntl(fd, F_SETOWN_EX, struct.pack("ii", F_OWNER_TID, _thread.get_native_id()))
            except OSError:  # a filesystem without notification (some FUSE and network ones)
                os.close(fd)
                failed.append(path)
                continue
            self.fds[key] = fd
        return failed

    def wait(self, timeout: float) -> bool:
        """True when a change came within `timeout` seconds; the queued signals are all taken."""
        got = signal.sigtimedwait(WAKE_SIGNALS, max(0.0, timeout)) is not None
        if got:
            while signal.sigtimedwait(WAKE_SIGNALS, 0) is not None:
                pass
        return got

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def tree_dirs(roots: Iterable[str], limit: int) -> tuple[list[str], bool]:
    """Every real directory under the roots (links not followed, at most `limit`); True when cut short."""
    found: list[str] = []
    for root in roots:
        if not os.path.isdir(root):
            continue
        for current, dirs, _ in os.walk(os.path.realpath(root)):
            found.append(current)
            if len(found) >= limit:
                return found, True
            dirs.sort()
    return found, False
