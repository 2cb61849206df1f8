"""The first step of a prune pass: walk the log root, find the log directories, test which are
live, and measure everything.

A log directory is a directory holding `.bootstrap.jsonl` or `.bootstrap.lock` (what `bootstrap
run` writes), found at any depth up to MAX_PATTERN_DEPTH below the root, whatever BOOTSTRAP_LOG_DIR
pattern made it. It is live while some process holds the flock on its `.bootstrap.lock`
(bootstrap.pid1.loglock): tested with a non-blocking attempt that never disturbs the holder. One
without a lock file (its app may have deleted it while the agent runs) is `lockless`: only its age
can remove it (bootstrap.node.remove).

Sizes are what `du` counts: blocks allocated, each inode once. A file with several links counts
once toward the root, and toward a log directory only when all its links are inside it (removing
the directory frees it only then). Memory is one small record (LogDir) per log directory, plus one
entry per file that has several links.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from bootstrap.logdir import LOCK_FILE, RECORD_FILE, is_locked
from bootstrap.node.compress import compressible
from bootstrap.node.logroot import DAY, MAX_DEPTH, TRASH_PREFIX, Blocked, LogRoot, blocks, is_log_dir, show

MAX_PATTERN_DEPTH = 6  # BOOTSTRAP_LOG_DIR patterns have a few components ({app}/{ip}: 2)


@dataclass
class LogDir:
    rel: tuple[str, ...]  # path components below the root
    size: int = 0  # bytes removing it frees (allocated on disk, the directories included)
    newest: float = 0.0  # newest mtime of a file inside, or the directory's own when it has none
    files: int = 0
    live: bool = False
    lockless: bool = False  # it, or a log dir inside it, has no lock file: its agent may run all the same
    blocked: tuple[tuple[str, ...], str] | None = None  # (where, why): a mount point inside, or too deep
    to_compress: int = 0  # rotated files older than --compress-after-days (dead dirs only)
    gone: bool = False
    stays: bool = False  # could not be removed in this pass (said why): not tried again


class Tally:
    """What measuring one tree adds up."""

    def __init__(self, compress_before: float | None = None) -> None:
        self.compress_before = compress_before
        self.used = 0  # toward the root's total: every inode once in the pass
        self.own = 0  # freed by removing the tree, but for files with several links
        self.links: dict[tuple[int, int], list[int]] = {}  # (dev, ino): [links seen here, st_nlink, bytes]
        self.newest = 0.0
        self.files = 0
        self.to_compress = 0
        self.nested_live = False
        self.lockless = False
        self.blocked: tuple[tuple[str, ...], str] | None = None

    def freed_by_removing(self) -> int:
        return self.own + sum(size for seen, nlink, size in self.links.values() if seen >= nlink)


class Scan:
    """What the walk found: `dirs` (the log directories) and `trash` (directories an interrupted
    pass moved aside, with their sizes)."""

    def __init__(self, root: LogRoot) -> None:
        self.root = root
        self.dirs: list[LogDir] = []
        self.trash: list[tuple[tuple[str, ...], int]] = []
        self.counted: set[tuple[int, int]] = set()  # files with several links already in the root's total

    def run(self) -> int:
        """Finds the log directories and measures everything; returns the root's size."""
        return blocks(os.fstat(self.root.fd)) + self.discover(self.root.fd, (), 1)

    def count(self, st: os.stat_result, tally: Tally) -> None:
        size = blocks(st)
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key not in self.counted:
                self.counted.add(key)
                tally.used += size
            tally.links.setdefault(key, [0, st.st_nlink, size])[0] += 1
        else:
            tally.used += size
            tally.own += size

    def discover(self, fd: int, rel: tuple[str, ...], depth: int) -> int:
        total, stray = 0, Tally()
        for entry, st in self.root.entries(fd, rel):
            if not stat.S_ISDIR(st.st_mode):
                self.count(st, stray)
                continue
            if st.st_dev != self.root.dev:
                continue  # another file system: not ours to measure or prune
            path = (*rel, entry)
            try:
                with self.root.opened(fd, path) as child:
                    if child is None:
                        continue
                    total += blocks(st)
                    if entry.startswith(TRASH_PREFIX):
                        tally = self.measure(child, path, 0, Tally())
                        self.trash.append((path, tally.freed_by_removing() + blocks(st)))
                        total += tally.used
                    elif is_log_dir(child):
                        total += self.log_dir(child, path)
                    elif depth < MAX_PATTERN_DEPTH:
                        total += self.discover(child, path, depth + 1)
                    else:
                        total += self.measure(child, path, 0, Tally()).used
            except Blocked:
                continue  # a bind mount: neither measured nor pruned
        return total + stray.used

    def log_dir(self, fd: int, rel: tuple[str, ...]) -> int:
        d = LogDir(rel, live=self.live(fd, rel))
        compress_before = None
        options = self.root.options
        if not d.live and options.compress_after_days is not None:
            compress_before = self.root.now - options.compress_after_days * DAY
        st = os.fstat(fd)
        tally = self.measure(fd, rel, 0, Tally(compress_before))
        # e.g. {app} and {app}/{ip} patterns on one node: the inner one is running
        d.live = d.live or tally.nested_live
        d.lockless, d.blocked = tally.lockless, tally.blocked
        d.size, d.files = tally.freed_by_removing() + blocks(st), tally.files
        d.to_compress = 0 if d.live or d.lockless else tally.to_compress
        d.newest = tally.newest if tally.files else st.st_mtime
        self.dirs.append(d)
        return tally.used

    def live(self, fd: int, rel: tuple[str, ...]) -> bool:
        try:
            lock = os.open(LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            return False  # lockless: see measure
        except OSError as exc:
            self.root.error(f"cannot open {show((*rel, LOCK_FILE))} to test liveness; counted as live", exc)
            return True  # when in doubt, keep it
        try:
            return is_locked(lock)
        finally:
            os.close(lock)

    def measure(self, fd: int, rel: tuple[str, ...], depth: int, tally: Tally) -> Tally:
        """Adds what is below fd to tally: bytes, files, newest mtime, rotated files to compress,
        and whether a log dir inside is live or lockless, or something inside blocks removal."""
        if depth > MAX_DEPTH:
            self.root.error(f"{show(rel)} is nested deeper than {MAX_DEPTH} directories", "not measured")
            tally.blocked = tally.blocked or (rel, f"is nested deeper than {MAX_DEPTH} directories")
            return tally
        has_lock = has_record = False
        for name, st in self.root.entries(fd, rel):
            if stat.S_ISDIR(st.st_mode):
                self.subdir(fd, (*rel, name), st, depth, tally)
                continue
            self.count(st, tally)
            if name == LOCK_FILE:
                has_lock = True
                if depth > 0 and self.live(fd, rel):
                    tally.nested_live = True
                continue  # created once, by the agent or the pruner: says nothing about the logs' age
            has_record = has_record or name == RECORD_FILE
            tally.files += 1
            tally.newest = max(tally.newest, st.st_mtime)
            if tally.compress_before is not None and compressible(name, st, tally.compress_before):
                tally.to_compress += 1
        if not has_lock and (has_record or depth == 0):
            tally.lockless = True
        return tally

    def subdir(self, fd: int, rel: tuple[str, ...], st: os.stat_result, depth: int, tally: Tally) -> None:
        try:
            if st.st_dev != self.root.dev:
                raise Blocked(rel, "is a mount point")
            with self.root.opened(fd, rel) as child:
                if child is not None:
                    self.count(st, tally)
                    self.measure(child, rel, depth + 1, tally)
        except Blocked as blocked:
            tally.blocked = tally.blocked or (blocked.rel, blocked.why)
