"""Deleting a directory moved aside by a prune pass, counting the bytes actually freed.

The walk is descriptor-based (every directory opened relative to its parent with O_NOFOLLOW, so a
symlink is removed, never followed) and never leaves the root's mount: a mount point inside (a
bind mount, a tmpfs) is reported and left, with everything above it. A file's blocks count as
freed only when its unlink succeeded and removed its last link; a directory's, when its rmdir
succeeded. What cannot be deleted is one error line each, and the caller learns the tree is not gone.
"""
from __future__ import annotations

import errno
import os
import stat

from bootstrap.node.logroot import MAX_DEPTH, Blocked, LogRoot, blocks, show


class Deleter:
    def __init__(self, root: LogRoot) -> None:
        self.root = root

    def delete(self, parent: int, name: str, rel: tuple[str, ...]) -> tuple[int, bool]:
        """Deletes the directory `name` in parent; `rel` names it in messages. Returns (bytes
        freed, whether it is gone)."""
        fd, gone = self.enter(parent, rel, (*rel[:-1], name))
        if fd is None:
            return 0, gone
        try:
            size = blocks(os.fstat(fd))
            freed, empty = self.empty(fd, rel, 0)
        finally:
            os.close(fd)
        return self.rmdir(parent, name, rel, freed, size) if empty else (freed, False)

    def empty(self, fd: int, rel: tuple[str, ...], depth: int) -> tuple[int, bool]:
        if depth > MAX_DEPTH:
            self.root.error(f"{show(rel)} is nested deeper than {MAX_DEPTH} directories", "not deleted")
            return 0, False
        freed, empty = 0, True
        for name, st in self.root.entries(fd, rel):  # each lstat taken just before its unlink
            if stat.S_ISDIR(st.st_mode):
                more, gone = self.subdir(fd, name, st, (*rel, name), depth)
            else:
                more, gone = self.unlink(fd, name, st, (*rel, name))
            freed, empty = freed + more, empty and gone
        return freed, empty

    def subdir(self, fd: int, name: str, st: os.stat_result, rel: tuple[str, ...], depth: int) -> tuple[int, bool]:
        child, gone = self.enter(fd, rel, rel, st)
        if child is None:
            return 0, gone
        try:
            freed, empty = self.empty(child, rel, depth + 1)
        finally:
            os.close(child)
        return self.rmdir(fd, name, rel, freed, blocks(st)) if empty else (freed, False)

    def enter(self, parent: int, rel: tuple[str, ...], path: tuple[str, ...],
              st: os.stat_result | None = None) -> tuple[int | None, bool]:
        """The directory's descriptor, or (None, whether it is already gone): one that is another
        mount (by `st`, when the caller has it, or by open_dir's checks) or cannot be opened is
        reported and left as it is."""
        try:
            if st is not None and st.st_dev != self.root.dev:
                raise Blocked(rel, "is a mount point")
            return self.root.open_dir(parent, path), False
        except FileNotFoundError:
            return None, True
        except Blocked as blocked:
            self.root.error(f"{show(rel)} {blocked.why}", "not entered, left as it is")
        except OSError as exc:
            self.root.error(f"cannot delete {show(rel)}", exc)
        return None, False

    def rmdir(self, fd: int, name: str, rel: tuple[str, ...], freed: int, size: int) -> tuple[int, bool]:
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return freed, True
            self.root.error(f"cannot delete {show(rel)}", exc)
            return freed, False
        return freed + size, True

    def unlink(self, fd: int, name: str, st: os.stat_result, rel: tuple[str, ...]) -> tuple[int, bool]:
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return 0, True
        except OSError as exc:
            self.root.error(f"cannot delete {show(rel)}", exc)
            return 0, False
        return (blocks(st) if st.st_nlink == 1 else 0), True  # another link keeps the data
