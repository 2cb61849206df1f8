"""The log check: follows the ready log (BOOTSTRAP_READY_LOG) like `tail -F` until a line matches
the pattern, woken by inotify events (watchdog) on the log's directory. Imported by the readiness
checker, never by PID 1; watchdog is imported only when a log check is set.
"""
from __future__ import annotations

import os
import re
import stat

from bootstrap import log
from bootstrap.helpers.checks import STARTUP_INTERVAL, CheckResult, describe
from bootstrap.helpers.checkstats import LOG_KIND
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

READ_CHUNK = 1 << 16
MAX_LINE = 1 << 20  # a "line" with no newline this long is judged as is, so memory stays bounded


class LogFollower:
    """Follows one log file like `tail -F` until a complete line matches the pattern.

    - Lines that were in the file when bootstrap started (`origin`: inode and size, taken by
      PID 1 before the app was spawned) do not count, so a match left by a previous container
      cannot make this one ready.
    - A file created later, or a new file at the path (rotation: another inode), is read from its
      beginning, after the rest of the old one. A file that shrank (copytruncate) is read again
      from the start.
    - Limit: a truncation followed by more writes than the old size, all between two reads,
      looks like plain growth; the checker reads within milliseconds of each event, so this needs
      an app that truncates and rewrites its log in one burst.
    """

    def __init__(self, path: str, pattern: str, origin: tuple[int, int] | None, matched: bool = False) -> None:
        self.path = path
        self.pattern = pattern
        self.regex = re.compile(pattern)
        self.origin = origin
        self.matched = matched
        self.fd = -1
        self.ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self.offset = 0
        self.partial = b""
        self.first_look = True  # `origin` applies only to the file found at the very first look

    def poll(self) -> CheckResult:
        """Reads what was written since the last call."""
        if not self.matched:
            if self.fd >= 0:
                self._read()  # finish the open file first: lines written just before a rotation count
            problem = None if self.matched else self._follow_path()
            if problem:
                return CheckResult(False, problem)
        if self.matched:
            self.close()
            return CheckResult(True, f"a line matched {self.pattern!r}")
        return CheckResult(False, f"no line matching {self.pattern!r} yet")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _follow_path(self) -> str | None:
        """Switches to the file now at the path if it is not the open one; returns a problem or None."""
        first, self.first_look = self.first_look, False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "the file does not exist yet"
        except OSError as exc:
            return f"cannot read it: {describe(exc)}"
        # While our fd is open its inode cannot be reused, so the same (dev, ino) is the same file.
        if self.fd >= 0 and (st.st_dev, st.st_ino) == self.ident:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO must not hang us
        except FileNotFoundError:
            return "the file does not exist yet"
        except OSError as exc:
            return f"cannot read it: {describe(exc)}"
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            os.close(fd)
            return "not a regular file"
        self.close()
        self.fd, self.ident, self.partial = fd, (opened.st_dev, opened.st_ino), b""
        self.offset = 0  # a file created later or rotated in: every line in it is new
        if first and self.origin and self.origin[0] == opened.st_ino and opened.st_size >= self.origin[1]:
            self.offset = self.origin[1]  # the file bootstrap found: what it held then is stale
        self._read()
        return None

    def _read(self) -> None:
        if os.fstat(self.fd).st_size < self.offset:
            self.offset, self.partial = 0, b""  # truncated: everything in it now is new
        while not self.matched:
            chunk = os.pread(self.fd, READ_CHUNK, self.offset)
            if not chunk:
                return
            self.offset += len(chunk)
            self._scan(chunk)

    def _scan(self, chunk: bytes) -> None:
        *lines, self.partial = (self.partial + chunk).split(b"\n")  # the last piece has no newline yet
        if len(self.partial) > MAX_LINE:
            lines.append(self.partial)
            self.partial = b""
        self.matched = any(self.regex.search(line.rstrip(b"\r").decode("utf-8", "replace")) for line in lines)


class _Wake:
    """A watchdog event handler (watchdog only calls `dispatch`, so no import of its base class is
    needed here) that wakes the main loop for events about `name`, or for any event when None."""

    def __init__(self, wake: Callable[[], None], name: str | None) -> None:
        self.wake, self.name = wake, name

    def dispatch(self, event: Any) -> None:
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if self.name is None or self.name in (os.path.basename(os.fsdecode(p)) for p in paths):
            self.wake()


class DirWatch:
    """Wakes the checker on inotify events for the log file.

    Watches the file's directory (symlinks resolved, since inotify on a link path sees nothing of
    the files behind it); while that directory does not exist, its nearest existing ancestor, and
    `update` moves the watch down as directories appear. Non-recursive: the cost stays one watch.
    Note: watchdog holds back events for up to 0.5 s after a rename out of the directory, so right
    after a rotation the checker's SAFETY_INTERVAL re-read (readiness.py) may be what notices a match.
    """

    def __init__(self, path: str, wake: Callable[[], None]) -> None:
        self.path, self.wake = path, wake
        self.observer: Any = None
        self.watch: Any = None
        self.key: tuple[str, str | None, int] | None = None

    @property
    def active(self) -> bool:
        return self.observer is not None

    def start(self) -> None:
        try:
            import logging

            from watchdog.observers import Observer

            # watchdog reports its own shutdown races through `logging`; ours is bootstrap.log, and
            # failures that matter reach us as exceptions from schedule().
            logging.getLogger("watchdog").addHandler(logging.NullHandler())
            logging.getLogger("watchdog").propagate = False
            self.observer = Observer()
            self.observer.start()
        except (ImportError, OSError, RuntimeError) as exc:
            self._give_up(exc)
            return
        self.update()

    def update(self) -> None:
        """Re-aims the watch if the directory to watch has changed (appeared, replaced, relinked)."""
        if self.observer is None:
            return
        key = self._target()
        if key == self.key:
            return
        try:
            if self.watch is not None:
                self.observer.unschedule(self.watch)
                self.watch = None
            self.watch = self.observer.schedule(_Wake(self.wake, key[1]), key[0], recursive=False)
        except (OSError, KeyError, RuntimeError) as exc:
            self._give_up(exc)
            return
        self.key = key
        log.debug(f"readiness: watching {key[0]} for {self.path}")

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()  # its threads are daemons: no join, the loop must not wait
            self.observer = None

    def _target(self) -> tuple[str, str | None, int]:
        """(directory, file name to filter on or None for any event, the directory's inode)."""
        real = os.path.realpath(self.path)
        directory: str = os.path.dirname(real)
        name: str | None = os.path.basename(real)
        while True:
            try:
                return directory, name, os.stat(directory).st_ino
            except OSError:
                parent = os.path.dirname(directory)
                if parent == directory:
                    raise
                directory, name = parent, None  # an ancestor: any event may be the directory appearing

    def _give_up(self, exc: BaseException) -> None:
        log.warning(f"readiness: cannot watch {self.path} with inotify ({describe(exc)}); "
                    f"polling it every {STARTUP_INTERVAL * 1000:g} ms instead "
                    "(raise fs.inotify.max_user_watches/max_user_instances if that is the cause)")
        self.stop()


class LogCheck:
    """LogFollower plus the inotify watch that tells it when to read."""

    kind = LOG_KIND

    def __init__(self, path: str, pattern: str, origin: tuple[int, int] | None, matched: bool) -> None:
        self.label = f"log {path}"
        self.follower = LogFollower(path, pattern, origin, matched)
        self.watch: DirWatch | None = None

    @property
    def matched(self) -> bool:
        return self.follower.matched

    @property
    def event_driven(self) -> bool:
        return self.watch is not None and self.watch.active

    def start(self, wake: Callable[[], None]) -> None:
        if not self.matched:
            self.watch = DirWatch(self.follower.path, wake)
            self.watch.start()

    def poll(self) -> CheckResult:
        if self.watch is not None:
            self.watch.update()  # before reading: whatever is written after this sends an event
        return self.follower.poll()

    def release(self) -> None:
        """After a match (which is forever): frees the inotify watch and its threads."""
        if self.matched and self.watch is not None:
            self.watch.stop()
            self.watch = None

