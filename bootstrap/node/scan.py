"""The first step of a prune pass: walk the log root, find the log directories, test which are
live, and measure everything.

A log directory is a directory holding `.bootstrap.jsonl` or `.bootstrap.lock` (what `bootstrap
run` writes), found at any depth up to MAX_PATTERN_DEPTH below the root, whatever BOOTSTRAP_LOG_DIR
pattern made it. It is live while some process holds the flock on its `.bootstrap.lock`
(bootstrap.pid1.loglock): tested with a non-blocking attempt that never disturbs the holder.
Only one small record (LogDir) per log directory is kept, whatever the number of files.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from bootstrap.logdir import LOCK_FILE, RECORD_FILE, is_locked
from bootstrap.node.compress import compressible
from bootstrap.node.logroot import DAY, MAX_DEPTH, TRASH_PREFIX, LogRoot, blocks, show

MARKERS = (RECORD_FILE, LOCK_FILE)
MAX_PATTERN_DEPTH = 6  # BOOTSTRAP_LOG_DIR patterns have a few components ({app}/{ip}: 2)


@dataclass
class LogDir:
    rel: tuple[str, ...]  # path components below the root
    size: int = 0  # bytes allocated on disk (st_blocks * 512), the directories included
    newest: float = 0.0  # newest mtime of a file inside, or the directory's own when it has none
    files: int = 0
    live: bool = False
    to_compress: int = 0  # rotated files older than --compress-after-days (dead dirs only)
    gone: bool = False


class Scan:
    """What the walk found: `dirs` (the log directories) and `trash` (directories an interrupted
    pass moved aside, with their sizes)."""

    def __init__(self, root: LogRoot) -> None:
        self.root = root
        self.nested_live = False  # set while measuring a log dir that holds a live one below it
        self.dirs: list[LogDir] = []
        self.trash: list[tuple[tuple[str, ...], int]] = []

    def run(self) -> int:
        """Finds the log directories and measures everything; returns the root's size."""
        return blocks(os.fstat(self.root.fd)) + self.discover(self.root.fd, (), 1)

    def discover(self, fd: int, rel: tuple[str, ...], depth: int) -> int:
        total = 0
        for entry, st in self.root.entries(fd, rel):
            total += blocks(st)
            if not stat.S_ISDIR(st.st_mode) or st.st_dev != self.root.dev:
                continue
            path = (*rel, entry)
            if entry.startswith(TRASH_PREFIX):
                size = self.measure_path(fd, path) + blocks(st)
                self.trash.append((path, size))
                total += size - blocks(st)
                continue
            with self.root.opened(fd, path) as child:
                if child is None:
                    continue
                if self.is_log_dir(child):
                    total += self.log_dir(child, path)
                elif depth < MAX_PATTERN_DEPTH:
                    total += self.discover(child, path, depth + 1)
                else:
                    total += self.measure(child, path, 0)[0]
        return total

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
        options = self.root.options
        if not d.live and options.compress_after_days is not None:
            compress_before = self.root.now - options.compress_after_days * DAY
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
            self.root.error(f"cannot open {show((*rel, LOCK_FILE))} to test liveness; counted as live", exc)
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
            self.root.error(f"{show(rel)} is nested deeper than {MAX_DEPTH} directories", "not measured")
            return size, newest, files, to_compress
        for name, st in self.root.entries(fd, rel):
            size += blocks(st)
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != self.root.dev:
                    continue
                with self.root.opened(fd, (*rel, name)) as child:
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
            if compress_before is not None and compressible(name, st, compress_before):
                to_compress += 1
        return size, newest, files, to_compress

    def measure_path(self, parent: int, rel: tuple[str, ...]) -> int:
        with self.root.opened(parent, rel) as fd:
            return 0 if fd is None else self.measure(fd, rel, 0)[0]
