"""Removing dead log directories: which ones (--keep-days, then the --max-bytes cap, oldest first),
and how: moved aside to a TRASH_PREFIX name while holding the directory's lock, then deleted with
shutil.rmtree's descriptor-based walk; trash left by an interrupted pass is deleted by the next.

Moving aside under the lock means an agent starting in the directory at that moment waits, finds
it gone and re-creates it, instead of writing into a directory being deleted.
"""
from __future__ import annotations

import os
import shutil

from bootstrap.node.logroot import DAY, TRASH_PREFIX, LogRoot, escape, show

TYPE_CHECKING = False
if TYPE_CHECKING:
    from bootstrap.node.scan import LogDir


def age(now: float, then: float) -> str:
    days = (now - then) / DAY
    return f"{days:.1f} days"


class Remover:
    def __init__(self, root: LogRoot) -> None:
        self.root = root
        self.report = root.report
        self.options = root.options

    # --- which ---------------------------------------------------------------------------------

    def clear_trash(self, trash: list[tuple[tuple[str, ...], int]]) -> None:
        for rel, size in trash:
            self.report.freed_bytes += size
            if self.options.dry_run:
                self.root.action(f"would delete {show(rel)} ({size} bytes, left by an interrupted prune)")
                continue
            parent = self.root.open_parent(rel)
            if parent is None:
                continue
            try:
                self.delete(parent, rel[-1], rel)
                self.root.action(f"deleted {show(rel)} ({size} bytes, left by an interrupted prune)")
            finally:
                os.close(parent)

    def age_out(self, dirs: list[LogDir]) -> None:
        if self.options.keep_days is None:
            return
        now = self.root.now
        cutoff = now - self.options.keep_days * DAY
        for d in dirs:
            if d.newest < cutoff:
                if d.live:
                    self.root.action(f"kept live {show(d.rel)} (older than {self.options.keep_days:g} days, but "
                                     "its agent holds the lock)")
                else:
                    self.remove(d, f"newest file {age(now, d.newest)} old, over --keep-days "
                                   f"{self.options.keep_days:g}")

    def cap(self, dirs: list[LogDir]) -> None:
        cap = self.options.max_bytes
        if cap is None:
            self.report.root_bytes -= self.report.freed_bytes
            return
        used = self.report.root_bytes - self.report.freed_bytes
        for d in sorted((d for d in dirs if not d.live and not d.gone), key=lambda d: d.newest):
            if used <= cap:
                break
            freed_before = self.report.freed_bytes
            self.remove(d, f"root over the cap: {used} > {cap} bytes; oldest dead dir first")
            used -= self.report.freed_bytes - freed_before
        self.report.root_bytes = used
        self.report.cap_met = used <= cap
        if not self.report.cap_met:
            live = [d for d in dirs if d.live]
            in_live = sum(d.size for d in live)
            self.root.action(f"cap not met: root {used} bytes > cap {cap} bytes with every dead dir gone: "
                             f"{in_live} bytes are in {len(live)} live dirs, which are never touched, "
                             f"{used - in_live} in other files and directories")

    # --- how -----------------------------------------------------------------------------------

    def remove(self, d: LogDir, reason: str) -> None:
        if self.options.dry_run:
            d.gone = True
            self.report.removed_dirs += 1
            self.report.freed_bytes += d.size
            self.root.action(f"would remove {show(d.rel)} ({d.size} bytes, {d.files} files): {reason}")
            return
        parent = self.root.open_parent(d.rel)
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
            self.root.action(f"removed {show(d.rel)} ({d.size} bytes, {d.files} files): {reason}")
        finally:
            os.close(parent)

    def move_aside(self, parent: int, d: LogDir) -> str | None:
        """Renames the dead dir to a trash name while holding its lock: an agent starting there now
        waits, then finds the directory gone and makes a new one."""
        name = d.rel[-1]
        with self.root.opened(parent, d.rel, missing_ok=True) as fd:
            if fd is None:
                return None
            free, lock = self.root.take_dir_lock(fd, d)
            if not free:
                return None
            trash = f"{TRASH_PREFIX}{name}.{os.getpid()}"
            try:
                os.rename(name, trash, src_dir_fd=parent, dst_dir_fd=parent)
            except OSError as exc:
                self.root.error(f"cannot move {show(d.rel)} aside", exc)
                return None
            finally:
                if lock is not None:
                    os.close(lock)
            return trash

    def delete(self, parent: int, name: str, rel: tuple[str, ...]) -> None:
        def failed(_func: object, path: str, info: tuple[type[BaseException], BaseException, object]) -> None:
            exc = info[1]
            if isinstance(exc, FileNotFoundError):
                return
            self.root.error(f"cannot delete {escape(path)} in {show(rel)}",
                            exc if isinstance(exc, OSError) else str(exc))

        shutil.rmtree(name, dir_fd=parent, onerror=failed)  # descriptor-based: never follows a symlink
