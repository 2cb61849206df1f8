"""The container's log directory on the node: LOG_ROOT/<pattern>, e.g. /data/logs/orders/10.1.2.3.

LOG_LINK (and each `log_links:` path) becomes a symlink into it, so the app keeps writing to
the path it always used. An existing directory is reused: a restart appends, never truncates.

Apps share the node's log root, so every directory the agent makes below it is 0750: its owner
(the app's uid) and its group, nobody else. On a log root set up for that (docs/contract.md, "The
node's log root": sticky, setgid, group = the log readers' group) the group is inherited from
the root, so the node's log readers read every app's logs while no app reads another's. A
directory below the root that belongs to another uid was made by another app: a non-root agent
refuses it rather than write this app's logs where that app could read them.
"""
from __future__ import annotations

import json
import os
import re
import stat
import time

from bootstrap.errors import BootstrapError
from bootstrap.frozen import frozen
from bootstrap.logdir import RECORD_FILE
from bootstrap.pid1.actions import Action, Planner, under
from bootstrap.rundir import iso_time
from bootstrap.settings.parsers import PLACEHOLDER_PATTERN
from bootstrap.settings.table import Settings


@frozen
class LogPlace:
    ip: str
    directory: str


def placeholders(settings: Settings, ip: str) -> dict[str, str | None]:
    return {
        "app": settings.app_name,
        "env": settings.env,
        "ip": ip,
        "pod": settings.pod,
        "namespace": settings.namespace,
        "node": settings.node,
        "hostname": os.uname().nodename,  # the kernel hostname, without importing socket
    }


def render(pattern: str, values: dict[str, str | None]) -> str:
    """Fills the pattern; every used placeholder must have a value that is one path component."""
    for name in re.findall(PLACEHOLDER_PATTERN, pattern):
        value = values.get(name)
        if not value:
            source = {"pod": "POD_NAME", "namespace": "POD_NAMESPACE", "node": "NODE_NAME"}.get(name, name)
            raise BootstrapError(f"BOOTSTRAP_LOG_DIR={pattern!r} uses {{{name}}} but {source} is not set; "
                                 f"set {source} (downward API) or drop {{{name}}} from the pattern")
        if "/" in value or value in (".", ".."):
            raise BootstrapError(f"BOOTSTRAP_LOG_DIR={pattern!r}: {{{name}}}={value!r} is not a valid "
                                 "directory name; fix the value or the pattern")
    return os.path.normpath(pattern.format(**values))


DIR_MODE = 0o750  # every directory the agent makes below the log root: the app's, and its readers'
ROOT_MODE = 0o3753  # the node's log root (the node setup): sticky, setgid, readers r-x, apps -wx


def check_root(log_root: str) -> None:
    if not os.path.isdir(log_root):
        raise BootstrapError(f"log root {log_root} does not exist or is not a directory; mount the node's "
                             "log directory there (hostPath) or set BOOTSTRAP_LOG_ROOT")
    if not os.access(log_root, os.W_OK | os.X_OK):
        uid = os.geteuid()
        setup = "" if uid == 0 else (
            f"; for apps that run as non-root users, set up the node's log root: owner root, the log readers' "
            f"group, mode {ROOT_MODE:o} (the node-logs chart does it)")
        raise BootstrapError(f"log root {log_root} is not writable by uid {uid} (read-only mount or permissions); "
                             "mount it read-write or set BOOTSTRAP_LOG_ROOT" + setup)


def check_owners(log_root: str, directory: str) -> None:
    """A non-root agent writes only into directories below the log root that are its own (or
    root's): one another uid made could be read by that uid."""
    uid = os.geteuid()
    if uid == 0:
        return
    path = directory
    while under(path, log_root) and os.path.normpath(path) != os.path.normpath(log_root):
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid not in (0, uid):
            raise BootstrapError(f"log directory {path} belongs to uid {st.st_uid}, not to this app's uid {uid}: "
                                 "another app made it and could read what this app writes there; remove it on "
                                 "the node (the log root is sticky, so only root can) or set BOOTSTRAP_LOG_DIR")
        path = os.path.dirname(path)


def owner_for(log_root: str, owner: tuple[int, int] | None) -> tuple[int, int] | None:
    """BOOTSTRAP_USER's ids for the chown a root agent does; on a setgid log root the group stays
    the inherited one (-1), so the node's log readers keep reading."""
    if owner is None:
        return None
    try:
        inherit = bool(os.stat(log_root).st_mode & stat.S_ISGID)
    except OSError:
        inherit = False
    return (owner[0], -1) if inherit else owner


def plan(settings: Settings, planner: Planner, ip: str, owner: tuple[int, int] | None) -> LogPlace:
    check_root(settings.log_root)
    directory = os.path.join(settings.log_root, render(settings.log_dir, placeholders(settings, ip)))
    check_owners(settings.log_root, directory)
    owner = owner_for(settings.log_root, owner)
    created = planner.ensure_dir(directory, stop_at=settings.log_root, owner=owner, mode=DIR_MODE)
    if owner and directory not in created and os.path.isdir(directory):
        st = os.stat(directory)
        if st.st_uid != owner[0] or owner[1] not in (-1, st.st_gid):  # reused from a run under another user
            planner.add(Action("chown", directory, uid=owner[0], gid=owner[1]))

    def previous_log_dir(dest: str) -> bool:
        return under(dest, settings.log_root)

    planner.ensure_dir(os.path.dirname(settings.log_link))
    planner.place_link(settings.log_link, directory, previous_log_dir)
    for link in settings.log_links:
        subdir = os.path.normpath(os.path.join(directory, link.subdir))
        if not under(subdir, directory) or subdir == directory:
            raise BootstrapError(f"log_links subdir={link.subdir!r} must be a relative path inside the log "
                                 "directory, without '..'")
        planner.ensure_dir(subdir, stop_at=directory, owner=owner, mode=DIR_MODE)
        planner.ensure_dir(os.path.dirname(link.path))
        planner.place_link(link.path, subdir, previous_log_dir)
    return LogPlace(ip, directory)


def record_line(settings: Settings, ip: str, event: str, pid: int, **extra: object) -> bytes:
    """One journal line (a start or an exit), JSON, newline-terminated."""
    record = {
        "event": event,
        "time": iso_time(time.time()),
        "app": settings.app_name,
        "env": settings.env,
        "ip": ip,
        "pod": settings.pod,
        "node": settings.node,
        "image": settings.image,
        "pid": pid,
        **extra,
    }
    return (json.dumps(record, sort_keys=True) + "\n").encode()


def append_lines(directory: str, data: bytes) -> None:
    """Appends whole lines (O_APPEND, so restarts never truncate history), or nothing: a write cut
    short by a full disk is taken back, so the journal never holds half a JSON line."""
    from bootstrap.rundir import write_all

    fd = os.open(os.path.join(directory, RECORD_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            write_all(fd, data)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass  # the original error says more
            raise
    finally:
        os.close(fd)


def append_record(directory: str, settings: Settings, ip: str, event: str, pid: int, **extra: object) -> None:
    append_lines(directory, record_line(settings, ip, event, pid, **extra))
