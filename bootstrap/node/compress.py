"""--compress-after-days: gzip the rotated log files of dead log directories, each to NAME.gz with
its owner, mode and mtime, so compressing never makes a directory look younger.

A file is gzipped to a temporary name first (TEMP_PREFIX + a random part: it fits NAME_MAX whatever
NAME is); the swap (NAME.gz appears, NAME goes) is made while holding the locks of the log
directory and of any log directory it is nested in, and only if the file did not change meanwhile.
A file with other links is left as it is (compressing it would free nothing), and so is one whose
NAME.gz would not fit NAME_MAX.
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import stat

from bootstrap.node.locks import DirLocks
from bootstrap.node.logroot import (
    DAY,
    MAX_DEPTH,
    NAME_MAX,
    TEMP_PREFIX,
    Blocked,
    LogRoot,
    blocks,
    escape,
    is_log_dir,
    own_name,
    show,
)
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.node.scan import LogDir

COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".z")
# Rotated files: app.log.1, app.1.log, catalina.out.2024-01-31, catalina.2024-01-31.log,
# app-2024-01-31.3.log, app.log.20240131 (logrotate, logback, log4j2 and Tomcat's names).
ROTATED = re.compile(r"""(
      \.(log|out|txt)\.\d+$
    | \.\d+\.(log|out|txt)$
    | \.(log|out|txt)\.\d{4}-?\d\d-?\d\d([._-][\w.-]*)?$
    | [._-]\d{4}-?\d\d-?\d\d([._-]\d+)*\.(log|out|txt)$
)""", re.X)


def compressible(name: str, st: os.stat_result, before: float) -> bool:
    """A rotated log file last written before `before`: never the active file, a hidden one, one
    already compressed, one with other links, or one whose NAME.gz would not fit NAME_MAX."""
    return (stat.S_ISREG(st.st_mode) and st.st_mtime < before and st.st_nlink == 1 and not name.startswith(".")
            and not name.lower().endswith(COMPRESSED) and ROTATED.search(name) is not None
            and len(os.fsencode(name)) <= NAME_MAX - len(".gz"))


def unlink_quietly(name: str, fd: int) -> None:
    try:
        os.unlink(name, dir_fd=fd)
    except OSError:
        pass


class Compressor:
    def __init__(self, root: LogRoot) -> None:
        self.root = root

    def run(self, dirs: list[LogDir]) -> None:
        days = self.root.options.compress_after_days
        if days is None:
            return
        before = self.root.now - days * DAY
        for d in dirs:
            if d.live or d.lockless or d.gone or not d.to_compress:
                continue
            parent = self.root.open_parent(d.rel)
            if parent is None:
                continue
            try:
                with self.root.opened(parent, d.rel) as fd:
                    if fd is not None:
                        self.compress_in(fd, d, d.rel, before, [(fd, d.rel)], 0)
            except Blocked:
                continue  # it became a mount point: next pass
            finally:
                os.close(parent)

    def compress_in(self, fd: int, d: LogDir, rel: tuple[str, ...], before: float,
                    owners: list[tuple[int, tuple[str, ...]]], depth: int) -> None:
        """`owners`: the log dirs from d down to fd, whose locks the swap holds."""
        if depth > MAX_DEPTH or d.live or d.lockless:
            return
        for name, st in self.root.entries(fd, rel):
            if d.live or d.lockless:
                return  # its agent started during this pass, or its lock file is gone
            if stat.S_ISDIR(st.st_mode) and st.st_dev == self.root.dev:
                try:
                    with self.root.opened(fd, (*rel, name)) as child:
                        if child is not None:
                            inner = [*owners, (child, (*rel, name))] if is_log_dir(child) else owners
                            self.compress_in(child, d, (*rel, name), before, inner, depth + 1)
                except Blocked:
                    continue  # never entered (the scan found it)
            elif compressible(name, st, before):
                if self.root.options.dry_run:
                    self.root.report.compressed_files += 1
                    self.root.action(f"would compress {show((*rel, name))} ({blocks(st)} bytes)")
                else:
                    self.compress_file(fd, name, st, d, (*rel, name), owners)

    def compress_file(self, fd: int, name: str, st: os.stat_result, d: LogDir, rel: tuple[str, ...],
                      owners: list[tuple[int, tuple[str, ...]]]) -> None:
        """gzip to a temporary name, then, holding the dir's lock, check the file did not change and
        swap: NAME.gz appears and NAME goes. Owner, mode and mtime are kept, so the dir's age stays."""
        target = name + ".gz"
        temp = own_name(TEMP_PREFIX, ".tmp")
        try:
            os.stat(target, dir_fd=fd, follow_symlinks=False)
            self.root.error(f"cannot compress {show(rel)}", f"{escape(target)} already exists; left as is")
            return
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.root.error(f"cannot compress {show(rel)}", exc)
            return
        try:
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            self.root.error(f"cannot compress {show(rel)}", exc)
            return
        try:
            opened = os.fstat(src)
            if (opened.st_ino, opened.st_size, opened.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                return  # changed since the scan: next pass
            new = self.gzip_to(src, fd, name, temp, st)
        except OSError as exc:
            self.root.error(f"cannot compress {show(rel)}", exc)
            unlink_quietly(temp, fd)
            return
        finally:
            os.close(src)
        if not self.swap(fd, name, temp, target, st, d, owners):
            unlink_quietly(temp, fd)
            return
        self.root.report.compressed_files += 1
        self.root.report.freed_bytes += blocks(st) - blocks(new)
        d.size -= blocks(st) - blocks(new)
        self.root.action(f"compressed {show(rel)} ({blocks(st)} -> {blocks(new)} bytes)")

    @staticmethod
    def gzip_to(src: int, fd: int, name: str, temp: str, st: os.stat_result) -> os.stat_result:
        """Writes src gzipped to `temp` in fd with the original's owner, mode and times; returns
        the stat of the written file. Raises OSError."""
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
        return new

    def swap(self, fd: int, name: str, temp: str, target: str, st: os.stat_result, d: LogDir,
             owners: list[tuple[int, tuple[str, ...]]]) -> bool:
        locks = DirLocks(self.root, d)
        try:
            if not all(locks.take(owner, rel, create=False) for owner, rel in owners):
                return False
            now = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                return False
            os.rename(temp, target, src_dir_fd=fd, dst_dir_fd=fd)
            os.unlink(name, dir_fd=fd)
            return True
        except OSError as exc:
            self.root.error(f"cannot replace {escape(name)} with {escape(target)}", exc)
            return False
        finally:
            locks.release()
