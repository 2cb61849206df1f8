"""BOOTSTRAP_USER -> uid, gid and supplementary groups, from the image's /etc/passwd and /etc/group,
and whether the agent can (and needs to) switch to them.

Started as root, the agent switches the app to BOOTSTRAP_USER (setgroups, setgid, setuid), which
needs CAP_SETGID and CAP_SETUID. Started as any other user, it cannot switch: a BOOTSTRAP_USER that
names the agent's own uid and gid is no switch at all; any other is one error line naming the
setting, the ids and the fix, before anything is changed on disk.
"""
from __future__ import annotations

import grp
import os
import pwd

from bootstrap.errors import BootstrapError
from bootstrap.frozen import frozen

VAR = "BOOTSTRAP_USER"
CAP_SETGID, CAP_SETUID = 6, 7  # bit numbers in /proc/self/status CapEff (linux/capability.h)


@frozen
class User:
    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str
    home: str


def resolve(spec: str) -> User:
    if spec[0].isdigit():
        uid_text, _, gid_text = spec.partition(":")
        uid = int(uid_text)
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            gid = int(gid_text) if gid_text else uid
            return User(uid, gid, (gid,), str(uid), "/")
        gid = int(gid_text) if gid_text else entry.pw_gid
        return User(uid, gid, _groups(entry.pw_name, gid), entry.pw_name, entry.pw_dir)
    try:
        entry = pwd.getpwnam(spec)
    except KeyError:
        raise BootstrapError(f"{VAR}={spec!r} does not exist in the image's /etc/passwd; "
                             "create the user in the image, or give a numeric uid[:gid]") from None
    return User(entry.pw_uid, entry.pw_gid, _groups(entry.pw_name, entry.pw_gid), entry.pw_name, entry.pw_dir)


def _groups(name: str, gid: int) -> tuple[int, ...]:
    return tuple(sorted({gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}))


def switch(spec: str | None) -> User | None:
    """The user the app must be switched to, or None when it runs as the agent does (no setting,
    or one naming the agent's own uid and gid). Raises BootstrapError when a switch is needed that
    this process cannot make."""
    if not spec:
        return None
    user = resolve(spec)
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0:
        if (user.uid, user.gid) == (uid, gid):
            return None  # already that user: nothing to switch
        raise BootstrapError(
            f"{VAR}={spec!r} asks to run the app as uid {user.uid} gid {user.gid}, but the agent runs as "
            f"uid {uid} gid {gid}, not root, and cannot switch users: clear it ({VAR}= in the environment, or "
            f"drop user: from the settings file) to run the app as uid {uid}, or start the agent as root with "
            "CAP_SETUID and CAP_SETGID (the chart's agent.user)")
    missing = [name for name, bit in (("CAP_SETUID", CAP_SETUID), ("CAP_SETGID", CAP_SETGID))
               if not has_capability(bit)]
    if missing and (user.uid, user.gid) != (0, 0):
        raise BootstrapError(
            f"{VAR}={spec!r} asks to run the app as uid {user.uid} gid {user.gid}, but the agent runs as root "
            f"without {' and '.join(missing)}, so it cannot switch users: add {' and '.join(missing)} to the "
            f"container's capabilities (the chart's agent.rootCapabilities), or clear {VAR} and run the "
            "container as the app's user")
    return user


def has_capability(bit: int) -> bool:
    """Whether this process has the capability in its effective set (/proc/self/status CapEff);
    True when /proc cannot tell, so the switch itself reports what fails."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError):
        pass
    return True
