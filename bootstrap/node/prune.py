"""One pass of `bootstrap logs prune` over a node's log root: dead log directories are compressed,
aged out and removed oldest first while the root is over its cap; live ones are never touched.

The pass runs its steps in order, each in its own module:
- bootstrap.node.logroot: the root held open and locked, the shared report and output, and the
  descriptor-relative access every step uses;
- bootstrap.node.scan: find the log directories (at any depth up to MAX_PATTERN_DEPTH, whatever
  BOOTSTRAP_LOG_DIR pattern made them), test which are live (their `.bootstrap.lock` is flocked)
  or lockless (no lock file: only their age removes them), measure everything;
- bootstrap.node.remove: delete trash left by an interrupted pass, age out (--keep-days), cap
  (--max-bytes), each dead directory moved aside under the locks of every log directory in it
  (bootstrap.node.locks), then deleted (bootstrap.node.delete);
- bootstrap.node.compress: gzip old rotated files in dead directories (--compress-after-days).

Safety against a hostile tree (the apps own their directories and write what they like):
every path is opened relative to a directory descriptor with O_NOFOLLOW, so a symlink is never
followed, and no mount point is crossed (another file system, or a bind mount of the same one);
a directory holding one is not removed. A dead directory is moved aside (renamed to TRASH_PREFIX…)
while the pruner holds its locks, so an agent that starts in it at that moment re-creates it
instead of writing into a directory being deleted; a trash directory left by an interrupted pass
is deleted by the next. Sizes count each inode once, and only bytes actually freed are reported.

Memory stays bounded by the number of log directories, not of files: the tree is streamed with
os.scandir, only one small record per log directory is kept, and output lines are printed, not kept.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bootstrap.node.compress import Compressor
from bootstrap.node.logroot import LogRoot, write_line
from bootstrap.node.remove import Remover
from bootstrap.node.scan import Scan


@dataclass(frozen=True)
class Options:
    root: str
    keep_days: float | None = None
    max_bytes: int | None = None
    compress_after_days: float | None = None
    dry_run: bool = False


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

    def summary(self) -> str:
        cap = "no cap" if self.cap_bytes is None else \
            f"cap {self.cap_bytes} bytes {'met' if self.cap_met else 'NOT met'}"
        verb = "would free" if self.dry_run else "freed"
        return (f"summary: {verb} {self.freed_bytes} bytes, removed {self.removed_dirs} dirs, compressed "
                f"{self.compressed_files} files, kept {self.live_dirs} live dirs, {self.dead_dirs} dead dirs "
                f"left, root {self.root_bytes} bytes, {cap}, {self.errors} errors"
                + (" (dry run: nothing changed)" if self.dry_run else ""))


class Pass:
    """The steps in order over one LogRoot; the root and its lock are closed whatever happens."""

    def __init__(self, options: Options, emit: Callable[[str], None]) -> None:
        self.report = Report(dry_run=options.dry_run, cap_bytes=options.max_bytes)
        self.root = LogRoot(options, self.report, emit, time.time())

    def run(self) -> Report:
        began = time.monotonic()
        root, report = self.root, self.report
        root.open()
        try:
            if not root.lock():
                report.skipped = True
                return report
            scan = Scan(root)
            report.root_bytes = scan.run()
            report.live_dirs = sum(1 for d in scan.dirs if d.live)
            if root.mount is None:
                root.error("cannot read /proc/self/fdinfo", "without it a bind mount cannot be told from a "
                           "directory; nothing is removed or compressed")
                return report
            remover = Remover(root)
            remover.clear_trash(scan.trash)
            remover.age_out(scan.dirs)
            Compressor(root).run(scan.dirs)
            remover.cap(scan.dirs)
            report.dead_dirs = sum(1 for d in scan.dirs if not d.live and not d.gone)
        finally:
            root.close()
            report.seconds = time.monotonic() - began
        return report


def run_pass(options: Options, emit: Callable[[str], None] | None = None) -> Report:
    return Pass(options, emit or write_line).run()
