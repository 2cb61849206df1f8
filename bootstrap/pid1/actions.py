"""Setup as data: steps are planned as a list of Actions, printed by `bootstrap plan`, applied by `run`.

Nothing is ever deleted or overwritten. A file or directory in the way is renamed to NAME.orig
(or NAME.orig.N); links are replaced atomically (a temporary link, then rename).
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable

from bootstrap.errors import BootstrapError
from bootstrap.frozen import asdict, frozen


@frozen
class Action:
    kind: str  # mkdir | move-aside | link | unlink-stale | chown
    path: str
    target: str = ""  # link destination, or move-aside name
    uid: int = -1
    gid: int = -1  # -1 with a uid: the group is kept (inherited from a setgid log root)
    reason: str = ""
    mode: int = -1  # a mkdir's exact permission bits (the umask does not apply); -1: the umask's

    def describe(self) -> str:
        if self.kind == "chown":
            text = f"chown {self.uid}{'' if self.gid == -1 else f':{self.gid}'} {self.path}"
        elif self.mode >= 0:
            text = f"{self.kind} {self.path} mode {self.mode:04o}"
        elif self.target:
            text = f"{self.kind} {self.path} -> {self.target}"
        else:
            text = f"{self.kind} {self.path}"
        return f"{text}  ({self.reason})" if self.reason else text

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v not in ("", -1)}


NAME_MAX = 255  # bytes in one file name (Linux filesystems)


def aside_name(path: str, taken: Iterable[str] = ()) -> str:
    """NAME.orig, or NAME.orig.N for the first N not taken on disk or by an earlier planned move.
    A name that is already near NAME_MAX is shortened to make room for the suffix."""
    taken = set(taken)
    candidate, n = _with_suffix(path, ".orig"), 0
    while os.path.lexists(candidate) or candidate in taken:
        n += 1
        candidate = _with_suffix(path, f".orig.{n}")
    return candidate


def _with_suffix(path: str, suffix: str) -> str:
    head, name = os.path.split(path)
    raw = os.fsencode(name)
    room = NAME_MAX - len(suffix)
    return os.path.join(head, name + suffix if len(raw) <= room else os.fsdecode(raw[:room]) + suffix)


class Planner:
    """Accumulates actions while remembering what earlier actions will have changed."""

    def __init__(self) -> None:
        self.actions: list[Action] = []
        self._dirs: set[str] = set()
        self._fresh: set[str] = set()  # directories this plan creates: nothing is in them yet
        self._asides: set[str] = set()

    def add(self, action: Action) -> None:
        self.actions.append(action)

    def move_aside(self, path: str, reason: str) -> None:
        aside = aside_name(path, self._asides)
        self._asides.add(aside)
        self.add(Action("move-aside", path, aside, reason=reason))

    def ensure_dir(self, path: str, stop_at: str = "/", owner: tuple[int, int] | None = None,
                   replaceable: Callable[[str], bool] | None = None, mode: int = -1) -> list[str]:
        """Plans real directories from stop_at down to path; returns the ones it will create.

        With `replaceable`, the directories below stop_at must be real: a symlink there is in the
        way (writing through it would change whatever it points at, e.g. the config source). A
        link `replaceable` accepts is removed, any other is moved aside."""
        path = os.path.normpath(path)
        if path in self._dirs or path == os.path.normpath(stop_at):
            return []
        created = self.ensure_dir(os.path.dirname(path), stop_at, owner, replaceable, mode) if path != "/" else []
        if os.path.dirname(path) not in self._fresh:  # else the disk shows what is about to be replaced
            is_link = os.path.islink(path)
            if os.path.isdir(path) and not (replaceable and is_link):
                self._dirs.add(path)
                return created
            if replaceable and is_link and replaceable(os.readlink(path)):
                self.add(Action("unlink-stale", path, os.readlink(path), reason="a directory must be here"))
            elif os.path.lexists(path):
                self.move_aside(path, "a file is where a directory must be")
        self.add(Action("mkdir", path, mode=mode))
        if owner:
            self.add(Action("chown", path, uid=owner[0], gid=owner[1]))
        self._dirs.add(path)
        self._fresh.add(path)
        return created + [path]

    def place_link(self, path: str, dest: str, replaceable: Callable[[str], bool], reason: str = "") -> None:
        """Makes path a symlink to dest. An existing link that `replaceable` accepts is swapped
        atomically; anything else in the way is moved aside first."""
        if os.path.dirname(os.path.normpath(path)) in self._fresh:
            pass  # its directory is created by this plan: nothing can be in the way
        elif os.path.islink(path):
            current = os.readlink(path)
            if current == dest:
                return
            if replaceable(current):
                self.add(Action("link", path, dest, reason=reason or f"replaces stale link to {current}"))
                return
            self.move_aside(path, f"a link to {current} is in the way")
        elif os.path.lexists(path):
            self.move_aside(path, "a directory is in the way" if os.path.isdir(path) else "a file is in the way")
        self.add(Action("link", path, dest, reason=reason))


def under(path: str, root: str) -> bool:
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


# --- apply ------------------------------------------------------------------------------------


def _mkdir(a: Action) -> None:
    if a.mode < 0:
        os.makedirs(a.path, exist_ok=True)
        return
    old = os.umask(0)  # exactly a.mode: a log dir is 0750 whatever the umask (docs/contract.md)
    try:
        os.mkdir(a.path, a.mode)
    except FileExistsError:
        if not os.path.isdir(a.path):
            raise
    finally:
        os.umask(old)


def _move_aside(a: Action) -> None:
    if not os.path.lexists(a.path):
        return
    # Re-pick at apply time: something may have taken the planned name since plan ran.
    target = a.target if not os.path.lexists(a.target) else aside_name(a.path)
    try:
        os.rename(a.path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # overlayfs cannot rename a directory that comes from an image layer: copy it, with
        # its links as links, then remove the original; its files are kept under the new name.
        import shutil

        shutil.move(a.path, target)


def _link(a: Action) -> None:
    # A short temporary name: the link's own name may already be NAME_MAX (255 bytes) long.
    tmp = os.path.join(os.path.dirname(a.path), f".bootstrap-link-{os.getpid()}")
    if os.path.lexists(tmp):
        os.unlink(tmp)  # our own leftover temporary link from a crashed run with the same pid
    os.symlink(a.target, tmp)
    os.replace(tmp, a.path)


def _unlink_stale(a: Action) -> None:
    if os.path.islink(a.path):
        os.unlink(a.path)


def _chown(a: Action) -> None:
    os.chown(a.path, a.uid, a.gid)


APPLY: dict[str, Callable[[Action], None]] = {
    "mkdir": _mkdir,
    "move-aside": _move_aside,
    "link": _link,
    "unlink-stale": _unlink_stale,
    "chown": _chown,
}


# What to do about a failed step, by errno; anything else is about permissions (see fix_for).
FIXES = {
    errno.ENAMETOOLONG: "the name is longer than the filesystem allows (255 bytes per name); shorten it",
    errno.EROFS: "it is on a read-only filesystem; put it on a writable mount (an emptyDir) or mount it read-write",
    errno.ENOSPC: "the filesystem is full; free space on it",
    errno.EDQUOT: "the disk quota is used up; free space on it",
    errno.ELOOP: "a symlink on the way loops; fix or remove that link",
    errno.ENOTDIR: "a file is where a directory must be on the way; move it",
}


def fix_for(action: Action, exc: OSError) -> str:
    """What to do about a failed step: by errno, and for a permission error by who the agent is.
    A chown refused is about the privilege (CAP_CHOWN), never about a directory's write bits."""
    if exc.errno in FIXES:
        return FIXES[exc.errno or 0]
    where = exc.filename or action.path
    uid = os.geteuid()
    if action.kind == "chown" and exc.errno == errno.EPERM:
        return (f"changing the owner needs root with CAP_CHOWN (the agent runs as uid {uid}): add it (the "
                "chart's agent.rootCapabilities), or clear BOOTSTRAP_USER so nothing is chowned")
    if uid == 0:
        return f"check that {where} is writable by root (CAP_DAC_OVERRIDE, or its owner and mode)"
    return (f"check that {where} is writable by uid {uid}, the agent's user (its owner and mode), or that "
            "it is on a writable mount (an emptyDir)")


def apply(actions: Iterable[Action]) -> None:
    for action in actions:
        try:
            APPLY[action.kind](action)
        except OSError as exc:
            raise BootstrapError(f"cannot {action.describe()}: {exc.strerror}; {fix_for(action, exc)}") from None
