"""Removing dead log directories: which ones (--keep-days, then the --max-bytes cap, oldest first),
and how: moved aside to a TRASH_PREFIX name while holding the lock of every log directory in it
(bootstrap.node.locks), then deleted (bootstrap.node.delete); trash left by an interrupted pass is
deleted by the next.

A directory without a lock file (`lockless`: its app may have deleted the file while its agent
runs) is never removed for the cap, only by --keep-days, by the age of its newest file. A directory
holding a mount point is never removed. The cap is decided on the bytes actually freed.
"""
from __future__ import annotations

import os

from bootstrap.node.delete import Deleter
from bootstrap.node.locks import DirLocks, no_lock_held
from bootstrap.node.logroot import DAY, TRASH_PREFIX, Blocked, LogRoot, own_name, show
from bootstrap.typecheck import TYPE_CHECKING

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
        self.deleter = Deleter(root)

    # --- which ---------------------------------------------------------------------------------

    def clear_trash(self, trash: list[tuple[tuple[str, ...], int]]) -> None:
        for rel, size in trash:
            if self.options.dry_run:
                self.report.freed_bytes += size
                self.root.action(f"would delete {show(rel)} ({size} bytes, left by an interrupted prune)")
                continue
            parent = self.root.open_parent(rel)
            if parent is None:
                continue
            try:
                self.clear_one(parent, rel, size)
            finally:
                os.close(parent)

    def clear_one(self, parent: int, rel: tuple[str, ...], size: int) -> None:
        try:
            with self.root.opened(parent, rel, missing_ok=True) as fd:
                if fd is None:
                    return
                if not no_lock_held(self.root, fd, rel, frozenset()):
                    self.root.error(f"{show(rel)} holds a lock an agent holds", "left as it is")
                    return
        except Blocked as blocked:
            self.root.error(f"{show(rel)} {blocked.why}", "left as it is")
            return
        freed, gone = self.deleter.delete(parent, rel[-1], rel)
        self.report.freed_bytes += freed
        if gone:
            self.root.action(f"deleted {show(rel)} ({freed} bytes, left by an interrupted prune)")
        else:
            self.root.action(f"partly deleted {show(rel)}: {freed} of {size} bytes freed, the rest could not "
                             "be deleted (left by an interrupted prune)")

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
                                   f"{self.options.keep_days:g}", by_age=True)

    def cap(self, dirs: list[LogDir]) -> None:
        cap = self.options.max_bytes
        if cap is None:
            self.report.root_bytes -= self.report.freed_bytes
            return
        used = self.report.root_bytes - self.report.freed_bytes
        for d in sorted((d for d in dirs if not d.live and not d.gone and not d.stays), key=lambda d: d.newest):
            if used <= cap:
                break
            if d.lockless:
                self.root.action(f"kept {show(d.rel)} (no lock file: its agent may be running; only "
                                 "--keep-days removes it)")
                continue
            used -= self.remove(d, f"root over the cap: {used} > {cap} bytes; oldest dead dir first")
        self.report.root_bytes = used
        self.report.cap_met = used <= cap
        if not self.report.cap_met:
            self.cap_not_met(dirs, used, cap)

    def cap_not_met(self, dirs: list[LogDir], used: int, cap: int) -> None:
        live = [d for d in dirs if d.live]
        kept = [d for d in dirs if not d.live and not d.gone]
        in_live, in_kept = sum(d.size for d in live), sum(d.size for d in kept)
        why_kept = f"{in_kept} bytes in {len(kept)} dead dirs that may not go (no lock file, or a mount " \
                   "point inside), " if kept else ""
        self.root.action(f"cap not met: root {used} bytes > cap {cap} bytes with every dead dir gone: "
                         f"{in_live} bytes are in {len(live)} live dirs, which are never touched, {why_kept}"
                         f"{used - in_live - in_kept} in other files and directories")

    # --- how -----------------------------------------------------------------------------------

    def remove(self, d: LogDir, reason: str, by_age: bool = False) -> int:
        """Removes d; returns the bytes freed. A lock file may be created for the removal only
        when d goes by its age: a lockless dir goes by nothing else."""
        if d.blocked is not None:
            where, why = d.blocked
            self.root.error(f"{show(where)} {why}", f"{show(d.rel)} is not removed")
            d.stays = True
            return 0
        if self.options.dry_run:
            d.gone = True
            self.report.removed_dirs += 1
            self.report.freed_bytes += d.size
            self.root.action(f"would remove {show(d.rel)} ({d.size} bytes, {d.files} files): {reason}")
            return d.size
        parent = self.root.open_parent(d.rel)
        if parent is None:
            return 0
        try:
            trash = self.move_aside(parent, d, create=by_age)
            if trash is None:
                d.stays = True
                return 0
            d.gone = True
            freed, gone = self.deleter.delete(parent, trash, d.rel)
        finally:
            os.close(parent)
        self.report.freed_bytes += freed
        if gone:
            self.report.removed_dirs += 1
            self.root.action(f"removed {show(d.rel)} ({freed} bytes, {d.files} files): {reason}")
        else:
            self.root.action(f"partly removed {show(d.rel)}: {freed} of {d.size} bytes freed, the rest could "
                             f"not be deleted and is left in {show((*d.rel[:-1], trash))}: {reason}")
        return freed

    def move_aside(self, parent: int, d: LogDir, create: bool) -> str | None:
        """Renames the dead dir to a trash name while holding the lock of every log dir in it; an
        agent starting in one now waits, then finds its directory gone and makes a new one. One
        that got in first is found after the rename, and the directory goes back."""
        try:
            with self.root.opened(parent, d.rel, missing_ok=True) as fd:
                if fd is None:
                    return None
                locks = DirLocks(self.root, d)
                if not locks.take_all(fd, create):
                    return None
                trash = own_name(TRASH_PREFIX)
                try:
                    os.rename(d.rel[-1], trash, src_dir_fd=parent, dst_dir_fd=parent)
                except OSError as exc:
                    locks.release(undo=True)
                    self.root.error(f"cannot move {show(d.rel)} aside", exc)
                    return None
                if locks.none_held_but_ours(fd):
                    locks.release()
                    return trash
                self.move_back(parent, trash, d)
                locks.release(undo=True)
                locks.kept_live()
                return None
        except Blocked as blocked:
            self.root.error(f"{show(d.rel)} {blocked.why}", "not removed")
            return None

    def move_back(self, parent: int, trash: str, d: LogDir) -> None:
        try:
            os.rename(trash, d.rel[-1], src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as exc:  # the trash is not deleted while a lock in it is held (clear_one)
            self.root.error(f"cannot move {show((*d.rel[:-1], trash))} back to {show(d.rel)}", exc)

