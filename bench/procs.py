"""Process plumbing for the benchmark: spawn with posix_spawn, wait with a timeout, find
descendants, read smaps_rollup, and watch a directory with inotify (ctypes, no dependency)."""
from __future__ import annotations

import ctypes
import os
import select
import signal
import struct
import time

PR_SET_CHILD_SUBREAPER = 36
IN_CREATE = 0x100
IN_MOVED_TO = 0x80

_libc = ctypes.CDLL(None, use_errno=True)


def become_subreaper() -> None:
    """Orphans of the contenders come back to the bench, so the final sweep can end them."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def spawn(argv: list[str], env: dict[str, str], stdout: str | int = os.devnull,
          stderr: str | int = os.devnull) -> int:
    """posix_spawn with stdin from /dev/null; stdout/stderr are a path (truncated) or an fd to dup."""
    actions: list[tuple] = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    for fd, target in ((1, stdout), (2, stderr)):
        if isinstance(target, int):
            actions.append((os.POSIX_SPAWN_DUP2, target, fd))
        else:
            actions.append((os.POSIX_SPAWN_OPEN, fd, target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    return os.posix_spawn(argv[0], argv, env, file_actions=actions)


def wait(pid: int, timeout: float) -> int | None:
    """Waits for a child; returns its wait status, or None on timeout (the child is left running)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return os.waitpid(pid, 0)[1]
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            return None
        return os.waitpid(pid, 0)[1]
    finally:
        os.close(pidfd)


def ppid_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(pid: int) -> list[int]:
    tree, out, todo = ppid_map(), [], [pid]
    while todo:
        for kid in tree.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def children(pid: int) -> list[int]:
    return ppid_map().get(pid, [])


def kill_tree(pid: int) -> None:
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(pid: int, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Sends sig, waits, and SIGKILLs the whole tree if it is still there after timeout."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    if wait(pid, timeout) is None:
        kill_tree(pid)
        wait(pid, 5.0)


def sweep() -> None:
    """Ends and reaps every process the bench still has (orphans come back to it as subreaper)."""
    me = os.getpid()
    for _ in range(3):
        left = descendants(me)
        if not left:
            break
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        reap_all()
    reap_all()


def reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def smaps_rollup(pid: int) -> dict[str, int]:
    """Rss, Pss, Private_Clean, Private_Dirty … in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3 and parts[0].endswith(":") and parts[2] == "kB":
                out[parts[0][:-1]] = int(parts[1])
    return out


class DirWatch:
    """inotify on one directory: `wait_for(name)` returns the CLOCK_REALTIME ns at which the
    bench saw `name` created (or renamed) there."""

    def __init__(self, path: str) -> None:
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if _libc.inotify_add_watch(self.fd, os.fsencode(path), IN_CREATE | IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self.path = path

    def wait_for(self, name: str, timeout: float) -> int | None:
        want = name.encode()
        deadline = time.monotonic() + timeout
        if os.path.exists(os.path.join(self.path, name)):
            return time.time_ns()
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            seen = time.time_ns()
            data = os.read(self.fd, 65536)
            i = 0
            while i < len(data):
                _wd, _mask, _cookie, length = struct.unpack_from("iIII", data, i)
                got = data[i + 16:i + 16 + length].rstrip(b"\0")
                i += 16 + length
                if got == want:
                    return seen

    def close(self) -> None:
        os.close(self.fd)
