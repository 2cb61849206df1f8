"""The log root as one prune pass holds it open, shared by the pass's steps (scan, compress,
remove): the root's descriptor and device, the options, the report and the output, and the
descriptor-relative access every step uses so that no symlink is ever followed.

Every directory is opened relative to its parent's descriptor with O_NOFOLLOW; the entries of a
directory are streamed with os.scandir, so memory does not grow with the number of files.
"""
from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bootstrap import log
from bootstrap.logdir import LOCK_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bootstrap.node.prune import Options, Report
    from bootstrap.node.scan import LogDir

ROOT_LOCK = ".bootstrap-prune.lock"
TRASH_PREFIX = ".bootstrap-trash."
MAX_DEPTH = 64  # inside a log directory; deeper trees are reported, not walked
DAY = 86400.0
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def escape(text: str) -> str:
    """One output line per action, whatever the names hold: control characters, backslashes and
    undecodable bytes (surrogate-escaped by os) become backslash escapes."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def show(rel: tuple[str, ...]) -> str:
    return escape("/".join(rel))


def blocks(st: os.stat_result) -> int:
    return st.st_blocks * 512


class LogRoot:
    """One pass's handle on the root; `fd` is open from `open()` until `close()`."""

    def __init__(self, options: Options, report: Report, emit: Callable[[str], None], now: float) -> None:
        self.options = options
        self.report = report
        self.emit = emit
        self.now = now
        self.fd = -1
        self.dev = 0  # the root's device: other mounts below it are not entered
        self.lock_fd = -1

    # --- output --------------------------------------------------------------------------------

    def action(self, line: str) -> None:
        self.report.lines.append(line)
        self.emit(line)

    def error(self, what: str, exc: OSError | str) -> None:
        self.report.errors += 1
        reason = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        log.error(f"{what}: {reason}")

    # --- the root ------------------------------------------------------------------------------

    def open(self) -> None:
        self.fd = os.open(self.options.root, DIR_FLAGS & ~os.O_NOFOLLOW)  # the root itself may be a link

    def lock(self) -> bool:
        """One pass at a time per root: a second one exits at once (a loop just tries next period)."""
        create = 0 if self.options.dry_run else os.O_CREAT  # a dry run creates nothing, not even the lock
        try:
            fd = os.open(ROOT_LOCK, os.O_RDONLY | create | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         0o644, dir_fd=self.fd)
        except OSError:
            if self.options.dry_run:  # a read-only look needs no lock
                return True
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self.emit(f"skipped: another prune is running on {escape(self.options.root)} "
                      f"({ROOT_LOCK} is locked); nothing done")
            return False
        self.lock_fd = fd
        return True

    def close(self) -> None:
        for fd in (self.lock_fd, self.fd):
            if fd >= 0:
                os.close(fd)  # closing the root lock's descriptor drops the lock
        self.lock_fd = self.fd = -1

    # --- descriptor-relative access ------------------------------------------------------------

    def entries(self, fd: int, rel: tuple[str, ...]) -> Iterator[tuple[str, os.stat_result]]:
        """(name, lstat) of each entry, streamed; errors are reported and skipped."""
        try:
            listing = os.scandir(fd)
        except OSError as exc:
            self.error(f"cannot read {show(rel) or '.'}", exc)
            return
        with listing:
            for entry in listing:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:  # vanished meanwhile, or no permission
                    if exc.errno != errno.ENOENT:
                        self.error(f"cannot stat {show((*rel, entry.name))}", exc)
                    continue
                if rel == () and entry.name == ROOT_LOCK:
                    continue
                yield entry.name, st

    @contextmanager
    def opened(self, parent: int, rel: tuple[str, ...], missing_ok: bool = False) -> Iterator[int | None]:
        """The directory rel[-1] under `parent`, opened without following a symlink and closed
        afterwards; None (and one error line, unless it is missing and missing_ok) if it cannot be."""
        try:
            fd = os.open(rel[-1], DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if not (missing_ok and exc.errno == errno.ENOENT):
                self.error(f"cannot open {show(rel)}", exc)
            yield None
            return
        try:
            yield fd
        finally:
            os.close(fd)

    def open_parent(self, rel: tuple[str, ...]) -> int | None:
        """The directory holding rel[-1], opened component by component from the root (the
        caller closes it); None when a component is gone or cannot be opened."""
        fd = os.dup(self.fd)
        for i, name in enumerate(rel[:-1]):
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                os.close(fd)
                if exc.errno != errno.ENOENT:
                    self.error(f"cannot open {show(rel[:i + 1])}", exc)
                return None
            os.close(fd)
            fd = child
        return fd

    def take_dir_lock(self, fd: int, d: LogDir) -> tuple[bool, int | None]:
        """Before changing a dead dir (moving it aside, swapping in a compressed file): (False, None)
        when the dir is live now; else (True, the held lock's fd, or None when the dir cannot have a
        lock file because nobody may create one there)."""
        try:
            lock = os.open(LOCK_FILE, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                           0o644, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                return True, None  # no agent can create one either
            self.error(f"cannot open {show((*d.rel, LOCK_FILE))}; left alone", exc)
            return False, None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            d.live = True
            self.report.live_dirs += 1
            self.action(f"kept live {show(d.rel)} (its agent started during this pass)")
            return False, None
        return True, lock
