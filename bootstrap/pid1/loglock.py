"""The log directory's liveness lock: while `bootstrap run` runs, PID 1 holds an exclusive flock on
LOGDIR/.bootstrap.lock, so `bootstrap logs prune` can tell a live directory from a dead one.

flock belongs to the open file description, not to the process: a forked helper that kept its
copy of the descriptor would keep the lock alive after PID 1 died (SIGKILL, OOM kill). So the
descriptor is O_CLOEXEC (the app never gets it) and every fork closes it in the child at once
(os.register_at_fork), leaving PID 1 the only holder; the kernel drops the lock when PID 1 dies.

An app can delete or replace the lock file (`find logs -name '*.lock' -delete`) while PID 1 holds
the lock on it: the directory would then look dead. keep_linked, made for each turn of PID 1's loop
(bootstrap.pid1.supervisor), finds that with one stat and links a new lock file under the name,
locked before it gets there, so the name never stands for a free lock.

A pruner that finds the lock free takes it itself for the few milliseconds it needs to move a dead
directory aside or swap in a compressed file. An agent starting at that moment waits for it, and
when the directory was moved away meanwhile, re-creates it and locks the new one.

Nothing here may stop the app: a lock that cannot be taken (read-only directory, a file in the
way, another live agent sharing the directory) is one warning line, and the run goes on.
"""
from __future__ import annotations

import errno
import fcntl
import os
import time

from bootstrap import log
from bootstrap.logdir import LOCK_FILE
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

WAIT_SECONDS = 5.0  # a pruner holds a free lock for milliseconds; longer means a live agent shares it
POLL_SECONDS = 0.01
ATTEMPTS = 3  # the directory can be moved away under us at most this often before we give up

_held = [-1]  # the descriptor PID 1 holds; -1 when none
_where = [""]  # the log directory it is in
_identity = [(0, 0)]  # its (st_dev, st_ino): what LOCK_FILE must still name
_told = [False]  # keep_linked logs once, not once per loop turn
_hooked = [False]


def _close_in_child() -> None:
    """Runs in every child forked from PID 1, before anything else."""
    if _held[0] >= 0:
        try:
            os.close(_held[0])
        except OSError:
            pass
        _held[0] = -1


def open_lock_file(directory: str, create: bool) -> int:
    """Opens LOCK_FILE in `directory` without following a symlink placed there; the app owns the
    directory and must not be able to point root's open at another file."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_CREAT if create else 0)
    return os.open(os.path.join(directory, LOCK_FILE), flags, 0o644)


def hold(directory: str, recreate: Callable[[], object]) -> int | None:
    """Takes the lock for PID 1's lifetime; `recreate` makes the directory again when a pruner moved
    it away meanwhile. Returns the descriptor, or None after logging why there is no lock."""
    if not _hooked[0]:
        os.register_at_fork(after_in_child=_close_in_child)
        _hooked[0] = True
    for _ in range(ATTEMPTS):
        try:
            fd = open_lock_file(directory, create=True)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # moved away between setup and now
                recreate()
                continue
            log.warning(f"cannot open {os.path.join(directory, LOCK_FILE)} ({exc.strerror}): no liveness "
                        "lock, so 'bootstrap logs prune' may treat this log directory as dead; the app runs on")
            return None
        if not _lock_within(fd, WAIT_SECONDS):
            os.close(fd)
            log.warning(f"{os.path.join(directory, LOCK_FILE)} stayed locked for {WAIT_SECONDS:g}s: another "
                        "live agent shares this log directory (same app name and IP?); it keeps the directory "
                        "live while it runs. Running without the lock")
            return None
        if _still_linked(fd, directory):
            _keep(fd, directory)
            return fd
        os.close(fd)  # a pruner moved the directory aside while we waited: make it again
        recreate()
    log.warning(f"{directory} kept disappearing while being locked; running without the liveness lock")
    return None


def release(fd: int | None) -> None:
    """After the exit record: the directory is dead from here on. `fd` is what hold returned;
    keep_linked may have replaced it since, so the descriptor held now is the one closed."""
    if fd is not None and _held[0] >= 0:
        os.close(_held[0])
        _held[0] = -1


def keep_linked() -> None:
    """On PID 1's loop turn: when LOCK_FILE no longer names the held lock (deleted or replaced by
    the app), a new lock file takes the name, already locked. One stat when nothing changed; never
    raises: a failure is one warning, and the app runs on."""
    fd, directory = _held[0], _where[0]
    if fd < 0:
        return
    path = os.path.join(directory, LOCK_FILE)
    try:
        there = os.stat(path, follow_symlinks=False)
        if (there.st_dev, there.st_ino) == _identity[0]:
            return
    except OSError:
        pass  # gone, or something else is in the way: try to put the lock back
    try:
        new = _link_new_lock(directory)
    except OSError as exc:
        if exc.errno != errno.ENOENT and not _told[0]:  # ENOENT: the directory itself is gone
            _told[0] = True
            log.warning(f"{path} was removed or replaced and a new one cannot be made ({exc.strerror}): "
                        "'bootstrap logs prune' may treat this log directory as dead; the app runs on")
        return
    os.close(fd)
    _keep(new, directory)
    if not _told[0]:
        _told[0] = True
        log.warning(f"{path} was removed or replaced while the app runs; a new one is held in its place")


def _keep(fd: int, directory: str) -> None:
    st = os.fstat(fd)
    _held[0], _where[0], _identity[0] = fd, directory, (st.st_dev, st.st_ino)


def _link_new_lock(directory: str) -> int:
    """A new lock file, locked under a temporary name nobody else opens, then renamed over LOCK_FILE:
    whoever opens LOCK_FILE from then on finds it held. Raises OSError."""
    temp = os.path.join(directory, f"{LOCK_FILE}.{os.getpid()}")
    try:
        os.unlink(temp)  # left by an attempt that failed
    except FileNotFoundError:
        pass
    fd = os.open(temp, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(temp, os.path.join(directory, LOCK_FILE))
    except OSError:
        os.close(fd)
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    return fd


def _lock_within(fd: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)  # flock has no timeout, and PID 1 has no signal handler to make one


def _still_linked(fd: int, directory: str) -> bool:
    """The file we locked is still LOGDIR/.bootstrap.lock (not in a directory moved aside)."""
    mine = os.fstat(fd)
    try:
        there = os.stat(os.path.join(directory, LOCK_FILE), follow_symlinks=False)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)

