"""BOOTSTRAP_USER -> uid, gid and supplementary groups, from the image's /etc/passwd and /etc/group."""
from __future__ import annotations

import grp
import pwd

from bootstrap.errors import BootstrapError
from bootstrap.frozen import frozen


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
        raise BootstrapError(f"BOOTSTRAP_USER={spec!r} does not exist in the image's /etc/passwd; "
                             "create the user in the image, or give a numeric uid[:gid]") from None
    return User(entry.pw_uid, entry.pw_gid, _groups(entry.pw_name, entry.pw_gid), entry.pw_name, entry.pw_dir)


def _groups(name: str, gid: int) -> tuple[int, ...]:
    return tuple(sorted({gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}))
