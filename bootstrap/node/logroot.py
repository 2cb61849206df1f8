"""The log root as one prune pass holds it open, shared by the pass's steps (scan, compress,
remove): the root's descriptor, device and mount, the options, the report and the output, and the
descriptor-relative access every step uses so that no symlink is followed and no mount is entered.

Every directory is opened relative to its parent's descriptor with O_NOFOLLOW and checked to be on
the root's mount: same st_dev (another file system) and same mount ID (a bind mount of the same
file system has the same st_dev; /proc/self/fdinfo tells them apart). The entries of a directory
are streamed with os.scandir, so memory does not grow with the number of files.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bootstrap import log
from bootstrap.logdir import LOCK_FILE, RECORD_FILE
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.node.prune import Options, Report

ROOT_LOCK = ".bootstrap-prune.lock"
# The pruner's own names: short and fixed, so that they fit NAME_MAX (255 bytes) whatever the
# name of the directory or file they stand for, and are recognised by the next pass.
TRASH_PREFIX = ".bootstrap-trash."  # + 12 hex digits: a dead directory moved aside to be deleted
TEMP_PREFIX = ".bootstrap-gz."  # + 12 hex digits + .tmp: a file being compressed
NAME_MAX = 255
MAX_DEPTH = 64  # inside a log directory; deeper trees are reported, not walked
DAY = 86400.0
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MARKERS = (RECORD_FILE, LOCK_FILE)  # what makes a directory a log directory


class Blocked(Exception):
    """A directory a pass never goes into: a mount point, or one nested deeper than MAX_DEPTH."""

    def __init__(self, rel: tuple[str, ...], why: str) -> None:
        super().__init__(rel, why)
        self.rel, self.why = rel, why


def own_name(prefix: str, suffix: str = "") -> str:
    return f"{prefix}{os.urandom(6).hex()}{suffix}"


def mount_id(fd: int) -> int | None:
    """The ID of the mount `fd` is on (/proc/self/fdinfo), or None when /proc cannot tell."""
    try:
        info = os.open(f"/proc/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = os.read(info, 4096)
    except OSError:
        return None
    finally:
        os.close(info)
    for line in text.splitlines():
        if line.startswith(b"mnt_id:"):
            return int(line.split()[1])
    return None


def is_log_dir(fd: int) -> bool:
    for marker in MARKERS:
        try:
            os.stat(marker, dir_fd=fd, follow_symlinks=False)
            return True
        except OSError:
            continue
    return False


def write_line(line: str) -> None:
    """To stdout, whatever its encoding: under LANG=C it is ASCII, and what it cannot encode is
    written as a backslash escape instead of raising."""
    out = sys.stdout
    encoding = getattr(out, "encoding", None) or "utf-8"
    out.write(line.encode(encoding, "backslashreplace").decode(encoding, "replace") + "\n")
    out.flush()


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
        self.dev = 0  # the root's device and mount ID: other mounts below it are not entered
        self.mount: int | None = None
        self.lock_fd = -1

    # --- output --------------------------------------------------------------------------------

    def action(self, line: str) -> None:
        self.emit(line)  # printed, never kept: memory must not grow with the number of files

    def error(self, what: str, exc: OSError | str) -> None:
        self.report.errors += 1
        reason = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        log.error(f"{what}: {reason}")

    # --- the root ------------------------------------------------------------------------------

    def open(self) -> None:
        self.fd = os.open(self.options.root, DIR_FLAGS & ~os.O_NOFOLLOW)  # the root itself may be a link
        self.dev, self.mount = os.fstat(self.fd).st_dev, mount_id(self.fd)

    def lock(self) -> bool:
        """One pass at a time per root: a second one exits at once (a loop just tries next period).

        The lock file is the pruner's own: 0600, owned by its uid, so an app (another uid) can
        neither open it nor flock it. One found that is not (an app made it first, or a link) is
        removed and made again: on the sticky log root only the file's owner or root can remove
        it, and the pruner is root."""
        create = 0 if self.options.dry_run else os.O_CREAT  # a dry run creates nothing, not even the lock
        try:
            fd = self._open_own_lock(create)
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

    def _open_own_lock(self, create: int) -> int:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        for _ in range(3):
            try:
                fd = os.open(ROOT_LOCK, flags, dir_fd=self.fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    return os.open(ROOT_LOCK, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=self.fd)
                except FileExistsError:
                    continue  # made meanwhile: look at it again
            except OSError as exc:
                if exc.errno != errno.ELOOP or not create:
                    raise
                fd = -1  # a symlink in its place
            if fd >= 0:
                st = os.fstat(fd)
                if st.st_uid == os.geteuid() and stat.S_ISREG(st.st_mode) and not st.st_mode & 0o077:
                    return fd
                os.close(fd)
            if not create:
                raise PermissionError(errno.EPERM, f"{ROOT_LOCK} is not the pruner's own file")
            log.warning(f"{escape(self.options.root)}/{ROOT_LOCK} was not the pruner's own (an app may have made "
                        "it to hold the pruner off): replaced")
            try:
                os.unlink(ROOT_LOCK, dir_fd=self.fd)
            except FileNotFoundError:
                pass
        raise PermissionError(errno.EPERM, f"{ROOT_LOCK} keeps being replaced in {self.options.root}")

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

    def open_dir(self, parent: int, rel: tuple[str, ...]) -> int:
        """The directory rel[-1] under `parent`, opened without following a symlink; raises OSError,
        or Blocked when it is on another mount (another file system, or a bind mount)."""
        fd = os.open(rel[-1], DIR_FLAGS, dir_fd=parent)
        try:
            if os.fstat(fd).st_dev != self.dev or mount_id(fd) != self.mount:
                raise Blocked(rel, "is a mount point")
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextmanager
    def opened(self, parent: int, rel: tuple[str, ...], missing_ok: bool = False) -> Iterator[int | None]:
        """open_dir, closed afterwards; None (and one error line, unless it is missing and
        missing_ok) if it cannot be opened. Blocked goes to the caller."""
        try:
            fd = self.open_dir(parent, rel)
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
        caller closes it); None when a component is gone, cannot be opened or is a mount point."""
        fd = os.dup(self.fd)
        for i in range(len(rel) - 1):
            try:
                child = self.open_dir(fd, rel[:i + 1])
            except Blocked as blocked:
                os.close(fd)
                self.error(f"{show(blocked.rel)} {blocked.why}", "not entered")
                return None
            except OSError as exc:
                os.close(fd)
                if exc.errno != errno.ENOENT:
                    self.error(f"cannot open {show(rel[:i + 1])}", exc)
                return None
            os.close(fd)
            fd = child
        return fd
