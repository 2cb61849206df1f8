"""What the metrics read from the container's log directory: its size, and the start and exit
records in its .bootstrap.jsonl. Bounded work: a capped walk, the last 4 MiB of the records,
refreshed at most every LOG_DIR_INTERVAL seconds. Standard library only."""
from __future__ import annotations

import os
import re

from bootstrap.logdir import EXIT_CAUSES, RECORD_FILE
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

LOG_DIR_INTERVAL = 60.0  # the log dir is walked at most this often
LOG_DIR_MAX_ENTRIES = 20000  # and never further than this many entries
RECORDS_MAX_BYTES = 4 << 20  # only the last 4 MiB of .bootstrap.jsonl are counted
CAUSE_RE = re.compile(rb'"cause": "([a-z-]+)"')
EVENT_RE = re.compile(rb'"event": "(start|exit)"')


def dir_bytes(root: str, cap: int = LOG_DIR_MAX_ENTRIES) -> tuple[int, bool]:
    """Apparent size of the regular files under root (symlinks not followed); (bytes, complete)."""
    total, entries, stack = 0, 0, [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    if entries > cap:
                        return total, False
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # removed meanwhile (rotation)
        except OSError:
            continue
    return total, True


def record_counts(path: str) -> tuple[int, dict[str, int]]:
    """Start records and exit records by cause in a log dir's .bootstrap.jsonl (its last 4 MiB)."""
    starts, causes = 0, dict.fromkeys(EXIT_CAUSES, 0)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - RECORDS_MAX_BYTES))
            data = fh.read(RECORDS_MAX_BYTES)
    except OSError:
        return 0, causes
    for line in data.splitlines():
        event = EVENT_RE.search(line)
        if event is None:
            continue
        if event.group(1) == b"start":
            starts += 1
            continue
        cause = CAUSE_RE.search(line)
        name = cause.group(1).decode() if cause else ""
        if name in causes:  # bounded labels: an unknown cause is not exported
            causes[name] += 1
    return starts, causes


class LogDirStats:
    """The log dir's size and its records, refreshed at most every LOG_DIR_INTERVAL seconds."""

    def __init__(self, link: str, clock: Callable[[], float]) -> None:
        self.link, self.clock = link, clock
        self.next_at = 0.0
        self.bytes = 0
        self.starts, self.causes = 0, dict.fromkeys(EXIT_CAUSES, 0)

    def refresh(self) -> None:
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + LOG_DIR_INTERVAL
        directory = os.path.realpath(self.link)  # LOG_LINK points at this container's log dir
        self.bytes, _capped = dir_bytes(directory)  # a capped walk still gives a useful lower bound
        self.starts, self.causes = record_counts(os.path.join(directory, RECORD_FILE))
