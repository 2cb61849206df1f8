"""One pass of `bootstrap logs prune` over a node's log root: dead log directories are compressed,
aged out and removed oldest first while the root is over its cap; live ones are never touched.

A log directory is a directory holding `.bootstrap.jsonl` or `.bootstrap.lock` (what `bootstrap
run` writes), found at any depth up to MAX_PATTERN_DEPTH below the root, whatever BOOTSTRAP_LOG_DIR
pattern made it. It is live while some process holds the flock on its `.bootstrap.lock`
(`loglock`): tested with a non-blocking attempt that never disturbs the holder.

Safety against a hostile tree (the apps own their directories and write what they like):
every path is opened relative to a directory descriptor with O_NOFOLLOW, so a symlink is never
followed, and deletion goes through shutil.rmtree's descriptor-based walk; other mounts below the
root are not entered. A dead directory is moved aside (renamed to TRASH_PREFIX…) while the pruner
holds its lock, so an agent that starts in it at that moment re-creates it instead of writing
into a directory being deleted; a trash directory left by an interrupted pass is deleted by the next.

Memory stays bounded by the number of log directories, not of files: the tree is streamed with
os.scandir and only one small record per log directory is kept.
"""
from __future__ import annotations

import errno
import fcntl
import gzip
import os
import re
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bootstrap import log
from bootstrap.logdir import LOCK_FILE, RECORD_FILE, is_locked

ROOT_LOCK = ".bootstrap-prune.lock"
TRASH_PREFIX = ".bootstrap-trash."
MARKERS = (RECORD_FILE, LOCK_FILE)
MAX_PATTERN_DEPTH = 6  # BOOTSTRAP_LOG_DIR patterns have a few components ({app}/{ip}: 2)
MAX_DEPTH = 64  # inside a log directory; deeper trees are reported, not walked
DAY = 86400.0
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".z")
# Rotated files: app.log.1, app.1.log, catalina.out.2024-01-31, catalina.2024-01-31.log,
# app-2024-01-31.3.log, app.log.20240131 (logrotate, logback, log4j2 and Tomcat's names).
ROTATED = re.compile(r"""(
      \.(log|out|txt)\.\d+$
    | \.\d+\.(log|out|txt)$
    | \.(log|out|txt)\.\d{4}-?\d\d-?\d\d([._-][\w.-]*)?$
    | [._-]\d{4}-?\d\d-?\d\d([._-]\d+)*\.(log|out|txt)$
)""", re.X)


@dataclass(frozen=True)
class Options:
    root: str
    keep_days: float | None = None
    max_bytes: int | None = None
    compress_after_days: float | None = None
    dry_run: bool = False


@dataclass
class LogDir:
    rel: tuple[str, ...]  # path components below the root
    size: int = 0  # bytes allocated on disk (st_blocks * 512), the directories included
    newest: float = 0.0  # newest mtime of a file inside, or the directory's own when it has none
    files: int = 0
    live: bool = False
    to_compress: int = 0  # rotated files older than --compress-after-days (dead dirs only)
    gone: bool = False


@dataclass
class Report:
    """What one pass did; the summary line and the metrics are made from it."""

    dry_run: bool = False
    freed_bytes: int = 0
    removed_dirs: int = 0
    compressed_files: int = 0
    live_dirs: int = 0
    dead_dirs: int = 0  # dead dirs still there after the pass
    root_bytes: int = 0  # after the pass
    cap_bytes: int | None = None
    cap_met: bool = True
    errors: int = 0
    skipped: bool = False  # another pass holds the root lock
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        cap = "no cap" if self.cap_bytes is None else \
            f"cap {self.cap_bytes} bytes {'met' if self.cap_met else 'NOT met'}"
        verb = "would free" if self.dry_run else "freed"
        return (f"summary: {verb} {self.freed_bytes} bytes, removed {self.removed_dirs} dirs, compressed "
                f"{self.compressed_files} files, kept {self.live_dirs} live dirs, {self.dead_dirs} dead dirs "
                f"left, root {self.root_bytes} bytes, {cap}, {self.errors} errors"
                + (" (dry run: nothing changed)" if self.dry_run else ""))


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


class Pass:
    def __init__(self, options: Options, emit: Callable[[str], None]) -> None:
        self.options = options
        self.emit = emit
        self.report = Report(dry_run=options.dry_run, cap_bytes=options.max_bytes)
        self.now = time.time()
        self.root_fd = -1
        self.root_dev = 0
        self.root_lock = -1
        self.nested_live = False  # set while measuring a log dir that holds a live one below it
        self.dirs: list[LogDir] = []
        self.trash: list[tuple[tuple[str, ...], int]] = []

    # --- output --------------------------------------------------------------------------------

    def action(self, line: str) -> None:
        self.report.lines.append(line)
        self.emit(line)

    def error(self, what: str, exc: OSError | str) -> None:
        self.report.errors += 1
        reason = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        log.error(f"{what}: {reason}")

    # --- the pass ------------------------------------------------------------------------------

    def run(self) -> Report:
        began = time.monotonic()
        self.root_fd = os.open(self.options.root, DIR_FLAGS & ~os.O_NOFOLLOW)  # the root itself may be a link
        try:
            if not self.lock_root():
                self.report.skipped = True
                return self.report
            self.root_dev = os.fstat(self.root_fd).st_dev
            self.report.root_bytes = self.scan()
            self.report.live_dirs = sum(1 for d in self.dirs if d.live)
            self.clear_trash()
            self.age_out()
            self.compress()
            self.cap()
            self.report.dead_dirs = sum(1 for d in self.dirs if not d.live and not d.gone)
        finally:
            for fd in (self.root_lock, self.root_fd):
                if fd >= 0:
                    os.close(fd)  # closing the root lock's descriptor drops the lock
            self.report.seconds = time.monotonic() - began
        return self.report

    def lock_root(self) -> bool:
        """One pass at a time per root: a second one exits at once (a loop just tries next period)."""
        create = 0 if self.options.dry_run else os.O_CREAT  # a dry run creates nothing, not even the lock
        try:
            fd = os.open(ROOT_LOCK, os.O_RDONLY | create | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         0o644, dir_fd=self.root_fd)
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
        self.root_lock = fd
        return True

    # --- scanning ------------------------------------------------------------------------------

    def scan(self) -> int:
        """Finds the log directories and measures everything; returns the root's size."""
        return blocks(os.fstat(self.root_fd)) + self.discover(self.root_fd, (), 1)

    def discover(self, fd: int, rel: tuple[str, ...], depth: int) -> int:
        total = 0
        for entry, st in self.entries(fd, rel):
            total += blocks(st)
            if not stat.S_ISDIR(st.st_mode) or st.st_dev != self.root_dev:
                continue
            path = (*rel, entry)
            if entry.startswith(TRASH_PREFIX):
                size = self.measure_path(fd, path) + blocks(st)
                self.trash.append((path, size))
                total += size - blocks(st)
                continue
            with self.opened(fd, path) as child:
                if child is None:
                    continue
                if self.is_log_dir(child):
                    total += self.log_dir(child, path)
                elif depth < MAX_PATTERN_DEPTH:
                    total += self.discover(child, path, depth + 1)
                else:
                    total += self.measure(child, path, 0)[0]
        return total

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

    @staticmethod
    def is_log_dir(fd: int) -> bool:
        for marker in MARKERS:
            try:
                os.stat(marker, dir_fd=fd, follow_symlinks=False)
                return True
            except OSError:
                continue
        return False

    def log_dir(self, fd: int, rel: tuple[str, ...]) -> int:
        d = LogDir(rel, live=self.live(fd, rel))
        compress_before = None
        if not d.live and self.options.compress_after_days is not None:
            compress_before = self.now - self.options.compress_after_days * DAY
        st = os.fstat(fd)
        self.nested_live = False
        size, newest, files, to_compress = self.measure(fd, rel, 0, compress_before)
        if self.nested_live:  # e.g. {app} and {app}/{ip} patterns on one node: the inner one is running
            d.live, to_compress = True, 0
        d.size, d.files, d.to_compress = size + blocks(st), files, to_compress
        d.newest = newest if files else st.st_mtime
        self.dirs.append(d)
        return size

    def live(self, fd: int, rel: tuple[str, ...]) -> bool:
        try:
            lock = os.open(LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            return False  # no agent has run here since the lock exists (see README: older agents)
        except OSError as exc:
            self.error(f"cannot open {show((*rel, LOCK_FILE))} to test liveness; counted as live", exc)
            return True  # when in doubt, keep it
        try:
            return is_locked(lock)
        finally:
            os.close(lock)

    def measure(self, fd: int, rel: tuple[str, ...], depth: int,
                compress_before: float | None = None) -> tuple[int, float, int, int]:
        """(bytes, newest file mtime, files, rotated files older than compress_before) below fd."""
        size, newest, files, to_compress = 0, 0.0, 0, 0
        if depth > MAX_DEPTH:
            self.error(f"{show(rel)} is nested deeper than {MAX_DEPTH} directories", "not measured")
            return size, newest, files, to_compress
        for name, st in self.entries(fd, rel):
            size += blocks(st)
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != self.root_dev:
                    continue
                with self.opened(fd, (*rel, name)) as child:
                    if child is None:
                        continue
                    s, n, f, c = self.measure(child, (*rel, name), depth + 1, compress_before)
                size, newest, files, to_compress = size + s, max(newest, n), files + f, to_compress + c
                continue
            if name == LOCK_FILE:
                if depth > 0 and self.live(fd, (*rel,)):
                    self.nested_live = True
                continue  # created once, by the agent or the pruner: says nothing about the logs' age
            files += 1
            newest = max(newest, st.st_mtime)
            if compress_before is not None and self.compressible(name, st, compress_before):
                to_compress += 1
        return size, newest, files, to_compress

    def measure_path(self, parent: int, rel: tuple[str, ...]) -> int:
        with self.opened(parent, rel) as fd:
            return 0 if fd is None else self.measure(fd, rel, 0)[0]

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

    @staticmethod
    def compressible(name: str, st: os.stat_result, before: float) -> bool:
        return (stat.S_ISREG(st.st_mode) and st.st_mtime < before and not name.startswith(".")
                and not name.lower().endswith(COMPRESSED) and ROTATED.search(name) is not None)

    # --- acting --------------------------------------------------------------------------------

    def clear_trash(self) -> None:
        for rel, size in self.trash:
            self.report.freed_bytes += size
            if self.options.dry_run:
                self.action(f"would delete {show(rel)} ({size} bytes, left by an interrupted prune)")
                continue
            parent = self.open_parent(rel)
            if parent is None:
                continue
            try:
                self.delete(parent, rel[-1], rel)
                self.action(f"deleted {show(rel)} ({size} bytes, left by an interrupted prune)")
            finally:
                os.close(parent)

    def age_out(self) -> None:
        if self.options.keep_days is None:
            return
        cutoff = self.now - self.options.keep_days * DAY
        for d in self.dirs:
            if d.newest < cutoff:
                if d.live:
                    self.action(f"kept live {show(d.rel)} (older than {self.options.keep_days:g} days, but its "
                                "agent holds the lock)")
                else:
                    self.remove(d, f"newest file {age(self.now, d.newest)} old, over --keep-days "
                                   f"{self.options.keep_days:g}")

    def cap(self) -> None:
        cap = self.options.max_bytes
        if cap is None:
            self.report.root_bytes -= self.report.freed_bytes
            return
        used = self.report.root_bytes - self.report.freed_bytes
        for d in sorted((d for d in self.dirs if not d.live and not d.gone), key=lambda d: d.newest):
            if used <= cap:
                break
            freed_before = self.report.freed_bytes
            self.remove(d, f"root over the cap: {used} > {cap} bytes; oldest dead dir first")
            used -= self.report.freed_bytes - freed_before
        self.report.root_bytes = used
        self.report.cap_met = used <= cap
        if not self.report.cap_met:
            live = [d for d in self.dirs if d.live]
            in_live = sum(d.size for d in live)
            self.action(f"cap not met: root {used} bytes > cap {cap} bytes with every dead dir gone: {in_live} "
                        f"bytes are in {len(live)} live dirs, which are never touched, {used - in_live} in other "
                        "files and directories")

    def remove(self, d: LogDir, reason: str) -> None:
        if self.options.dry_run:
            d.gone = True
            self.report.removed_dirs += 1
            self.report.freed_bytes += d.size
            self.action(f"would remove {show(d.rel)} ({d.size} bytes, {d.files} files): {reason}")
            return
        parent = self.open_parent(d.rel)
        if parent is None:
            return
        try:
            trash = self.move_aside(parent, d)
            if trash is None:
                return
            d.gone = True
            self.delete(parent, trash, d.rel)
            self.report.removed_dirs += 1
            self.report.freed_bytes += d.size
            self.action(f"removed {show(d.rel)} ({d.size} bytes, {d.files} files): {reason}")
        finally:
            os.close(parent)

    def move_aside(self, parent: int, d: LogDir) -> str | None:
        """Renames the dead dir to a trash name while holding its lock: an agent starting there now
        waits, then finds the directory gone and makes a new one."""
        name = d.rel[-1]
        with self.opened(parent, d.rel, missing_ok=True) as fd:
            if fd is None:
                return None
            free, lock = self.take_dir_lock(fd, d)
            if not free:
                return None
            trash = f"{TRASH_PREFIX}{name}.{os.getpid()}"
            try:
                os.rename(name, trash, src_dir_fd=parent, dst_dir_fd=parent)
            except OSError as exc:
                self.error(f"cannot move {show(d.rel)} aside", exc)
                return None
            finally:
                if lock is not None:
                    os.close(lock)
            return trash

    def take_dir_lock(self, fd: int, d: LogDir) -> tuple[bool, int | None]:
        """(False, None) when the dir is live now; else (True, the held lock's fd, or None when the
        dir cannot have a lock file because nobody may create one there)."""
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

    def delete(self, parent: int, name: str, rel: tuple[str, ...]) -> None:
        def failed(_func: object, path: str, info: tuple[type[BaseException], BaseException, object]) -> None:
            exc = info[1]
            if isinstance(exc, FileNotFoundError):
                return
            self.error(f"cannot delete {escape(path)} in {show(rel)}",
                       exc if isinstance(exc, OSError) else str(exc))

        shutil.rmtree(name, dir_fd=parent, onerror=failed)  # descriptor-based: never follows a symlink

    def open_parent(self, rel: tuple[str, ...]) -> int | None:
        fd = os.dup(self.root_fd)
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

    # --- compression ---------------------------------------------------------------------------

    def compress(self) -> None:
        days = self.options.compress_after_days
        if days is None:
            return
        before = self.now - days * DAY
        for d in self.dirs:
            if d.live or d.gone or not d.to_compress:
                continue
            parent = self.open_parent(d.rel)
            if parent is None:
                continue
            try:
                with self.opened(parent, d.rel) as fd:
                    if fd is not None:
                        self.compress_in(fd, d, d.rel, before, fd, 0)
            finally:
                os.close(parent)

    def compress_in(self, fd: int, d: LogDir, rel: tuple[str, ...], before: float, top: int, depth: int) -> None:
        if depth > MAX_DEPTH or d.live:
            return
        for name, st in self.entries(fd, rel):
            if d.live:
                return  # its agent started during this pass
            if stat.S_ISDIR(st.st_mode) and st.st_dev == self.root_dev:
                with self.opened(fd, (*rel, name)) as child:
                    if child is not None:
                        self.compress_in(child, d, (*rel, name), before, top, depth + 1)
            elif self.compressible(name, st, before):
                if self.options.dry_run:
                    self.report.compressed_files += 1
                    self.action(f"would compress {show((*rel, name))} ({blocks(st)} bytes)")
                else:
                    self.compress_file(fd, name, st, d, (*rel, name), top)

    def compress_file(self, fd: int, name: str, st: os.stat_result, d: LogDir, rel: tuple[str, ...],
                      top: int) -> None:
        """gzip to a temporary name, then, holding the dir's lock, check the file did not change and
        swap: NAME.gz appears and NAME goes. Owner, mode and mtime are kept, so the dir's age stays."""
        target = name + ".gz"
        temp = f".{name}.gz.{os.getpid()}.tmp"
        try:
            os.stat(target, dir_fd=fd, follow_symlinks=False)
            self.error(f"cannot compress {show(rel)}", f"{escape(target)} already exists; left as is")
            return
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.error(f"cannot compress {show(rel)}", exc)
            return
        try:
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            self.error(f"cannot compress {show(rel)}", exc)
            return
        try:
            opened = os.fstat(src)
            if (opened.st_ino, opened.st_size, opened.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                return  # changed since the scan: next pass
            out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          stat.S_IMODE(st.st_mode), dir_fd=fd)
            try:
                with os.fdopen(os.dup(src), "rb") as reader, os.fdopen(os.dup(out), "wb") as raw, \
                        gzip.GzipFile(filename=name, mode="wb", fileobj=raw, mtime=int(st.st_mtime)) as writer:
                    shutil.copyfileobj(reader, writer, 1 << 20)
                os.fchown(out, st.st_uid, st.st_gid)
                os.fsync(out)
                new = os.fstat(out)
            finally:
                os.close(out)
            os.utime(temp, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            self.error(f"cannot compress {show(rel)}", exc)
            self.unlink_quietly(temp, fd)
            return
        finally:
            os.close(src)
        if not self.swap(fd, name, temp, target, st, d, top):
            self.unlink_quietly(temp, fd)
            return
        self.report.compressed_files += 1
        self.report.freed_bytes += blocks(st) - blocks(new)
        d.size -= blocks(st) - blocks(new)
        self.action(f"compressed {show(rel)} ({blocks(st)} -> {blocks(new)} bytes)")

    def swap(self, fd: int, name: str, temp: str, target: str, st: os.stat_result, d: LogDir, top: int) -> bool:
        free, lock = self.take_dir_lock(top, d)
        if not free:
            return False
        try:
            now = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                return False
            os.rename(temp, target, src_dir_fd=fd, dst_dir_fd=fd)
            os.unlink(name, dir_fd=fd)
            return True
        except OSError as exc:
            self.error(f"cannot replace {escape(name)} with {escape(target)}", exc)
            return False
        finally:
            if lock is not None:
                os.close(lock)

    @staticmethod
    def unlink_quietly(name: str, fd: int) -> None:
        try:
            os.unlink(name, dir_fd=fd)
        except OSError:
            pass


def age(now: float, then: float) -> str:
    days = (now - then) / DAY
    return f"{days:.1f} days"


def run_pass(options: Options, emit: Callable[[str], None] | None = None) -> Report:
    def write(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    return Pass(options, emit or write).run()
