"""The locks a pass holds while it changes a dead log directory: before moving it aside, the lock
of every log directory inside it (the {app} and {app}/{ip} patterns nest), each re-tested under the
lock; after the move, a walk of the moved tree proves that no agent locked a lock there meanwhile.

An agent that starts in one of these directories while they are held waits for the lock, then
finds its directory gone and makes a new one (bootstrap.pid1.loglock); one that got in between the
two checks is found by the second, and the directory goes back where it was.
"""
from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator

from bootstrap.logdir import LOCK_FILE, is_locked
from bootstrap.node.logroot import MAX_DEPTH, Blocked, LogRoot, is_log_dir, show
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.node.scan import LogDir

LOCK_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def walk_dirs(root: LogRoot, fd: int, rel: tuple[str, ...], depth: int = 0) -> Iterator[tuple[int, tuple[str, ...]]]:
    """fd and every directory below it, each open while the caller looks at it. Raises Blocked
    for a mount point, a tree too deep, or a directory that cannot be read: what is not seen
    cannot be known to be dead."""
    yield fd, rel
    if depth >= MAX_DEPTH:
        raise Blocked(rel, f"is nested deeper than {MAX_DEPTH} directories")
    try:
        listing = os.scandir(fd)
    except OSError as exc:
        raise Blocked(rel, f"cannot be read ({exc.strerror or exc})") from None
    with listing:
        for entry in listing:
            path = (*rel, entry.name)
            try:
                if not entry.is_dir(follow_symlinks=False):  # the type from the listing: no stat
                    continue
                child = root.open_dir(fd, path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise Blocked(path, f"cannot be read ({exc.strerror or exc})") from None
            try:
                yield from walk_dirs(root, child, path, depth + 1)
            finally:
                os.close(child)


def no_lock_held(root: LogRoot, fd: int, rel: tuple[str, ...], ours: frozenset[tuple[int, int]]) -> bool:
    """No lock file below fd is held, but those in `ours`: after a move aside, or before deleting
    trash. Something that cannot be looked at counts as held."""
    try:
        for dir_fd, _ in walk_dirs(root, fd, rel):
            try:
                st = os.stat(LOCK_FILE, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if identity(st) in ours:
                continue
            lock = os.open(LOCK_FILE, LOCK_FLAGS, dir_fd=dir_fd)
            try:
                if is_locked(lock):
                    return False
            finally:
                os.close(lock)
    except (Blocked, OSError):
        return False
    return True


class DirLocks:
    """The locks held for one dead directory `d`; release() lets them all go."""

    def __init__(self, root: LogRoot, d: LogDir) -> None:
        self.root, self.d = root, d
        self.held: list[int] = []
        self.ours: set[tuple[int, int]] = set()
        self.made: list[tuple[int, int]] = []  # (dir fd, lock fd) of lock files this pass created

    def take_all(self, fd: int, create: bool) -> bool:
        """Locks every log directory in d (d included) before it is moved aside. False, with every
        lock let go and the reason said, when one is live, has no lock file and `create` is False,
        or something inside blocks the removal (see dirs)."""
        try:
            for dir_fd, rel in walk_dirs(self.root, fd, self.d.rel):
                if (dir_fd == fd or is_log_dir(dir_fd)) and not self.take(dir_fd, rel, create):
                    self.release(undo=True)
                    return False
        except Blocked as blocked:
            self.release(undo=True)
            self.d.blocked = (blocked.rel, blocked.why)
            self.root.error(f"{show(blocked.rel)} {blocked.why}", f"{show(self.d.rel)} is not removed")
            return False
        return True

    def take(self, dir_fd: int, rel: tuple[str, ...], create: bool) -> bool:
        """Locks LOCK_FILE in dir_fd (creating it when `create`); False when that cannot be done
        (already said why). A directory where nobody may create a lock file needs none."""
        made = False
        try:
            lock = os.open(LOCK_FILE, LOCK_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                self.kept_lockless()
                return False
            try:
                lock = os.open(LOCK_FILE, LOCK_FLAGS | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
                made = True
            except FileExistsError:  # an agent is making it right now
                self.kept_live()
                return False
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                    return True  # no agent can create one either
                return self.cannot_open(rel, exc)
        except OSError as exc:
            return self.cannot_open(rel, exc)
        self.held.append(lock)
        if made:
            self.made.append((os.dup(dir_fd), lock))
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            there = os.stat(LOCK_FILE, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:  # held by an agent; or replaced meanwhile, by an agent linking its lock again
            self.kept_live()
            return False
        mine = os.fstat(lock)
        if identity(there) != identity(mine):
            self.kept_live()
            return False
        self.ours.add(identity(mine))
        return True

    def none_held_but_ours(self, fd: int) -> bool:
        """After the move: no agent locked a lock in the moved tree meanwhile."""
        return no_lock_held(self.root, fd, self.d.rel, frozenset(self.ours))

    def cannot_open(self, rel: tuple[str, ...], exc: OSError) -> bool:
        self.root.error(f"cannot open {show((*rel, LOCK_FILE))}", f"{exc.strerror or exc}; {show(self.d.rel)} "
                        "is left alone")
        return False

    def kept_live(self) -> None:
        self.d.live = True
        self.root.report.live_dirs += 1
        self.root.action(f"kept live {show(self.d.rel)} (its agent started during this pass)")

    def kept_lockless(self) -> None:
        self.d.lockless = True
        self.root.action(f"kept {show(self.d.rel)} (no lock file: its agent may be running; "
                         "only --keep-days removes it)")

    def release(self, undo: bool = False) -> None:
        """Lets every lock go. With `undo` (the directory stays), the lock files this pass created
        are removed first: a directory without one must go on being seen as such."""
        for dir_fd, lock in self.made:
            if undo:
                try:
                    if identity(os.stat(LOCK_FILE, dir_fd=dir_fd, follow_symlinks=False)) == identity(os.fstat(lock)):
                        os.unlink(LOCK_FILE, dir_fd=dir_fd)
                except OSError:
                    pass
            os.close(dir_fd)
        for lock in self.held:
            os.close(lock)
        self.held, self.made = [], []
