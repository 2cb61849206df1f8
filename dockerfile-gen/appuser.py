"""Who a generated app runs as, and what it may write.

Every generated image has its own numeric user: uid N and a group of the same number N, created
in the image as the account `app` (or the spec's `user:` name). N is the spec's `uid:`, or else
derived from the app's name (`derived_uid`): UID_BASE + the first 8 bytes of sha256("uid:" + name)
modulo UID_SPAN, so every build of an app gets the same N without a registry of numbers, and apps
are apart on a node (each app's log directory belongs to its uid; docs/contract.md, "The node's log
root"). A batch refuses two apps with one uid, naming both and the fix (`uid:` in one of them).

The app's files belong to root and the app cannot change them; it may write only
- the directories the spec declares (`writable:`), each an emptyDir in the chart, made in the
  image for the app's uid (so a plain `podman run` works too);
- what the agent places for it: the run dir (where the log link and the probe files go) and the
  config link directory, both the app's in the image and emptyDirs in the chart;
- its log directory on the node, and /tmp (an emptyDir).
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootstrap.settings import parsers, table
from dockerfile_gen import checks
from dockerfile_gen.kinds import APP_HOME, CONF_DIR

UID_BASE, UID_SPAN = 20000, 40000  # 20000-59999: clear of system users, of 10000-19999 and of 16-bit limits
LOG_READER_GID = 10000  # the node's log readers (helm/node-logs); never an app's uid or gid
ACCOUNT = "app"
RUN_DIR: str = table.setting_row("run_dir").default
LINK_DIR = f"{RUN_DIR}/links"  # the log links land here, on the run dir's writable mount
LOG_LINK = f"{APP_HOME}/{table.setting_row('log_link').default}"  # the path the app writes its logs to
QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
# Where a writable directory may not go: the agent's own places and what the chart mounts anyway.
RESERVED = (CONF_DIR, LOG_LINK, RUN_DIR, "/tmp", f"{APP_HOME}/{parsers.DEFAULT_CONF_SOURCE}")
SYSTEM = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr", "/var")


@dataclass(frozen=True)
class Writable:
    path: str  # absolute
    size_limit: str | None = None  # a Kubernetes quantity for the emptyDir's sizeLimit


def derived_uid(name: str) -> int:
    digest = hashlib.sha256(f"uid:{name}".encode()).digest()
    return UID_BASE + int.from_bytes(digest[:8], "big") % UID_SPAN


def parse_uid(value: Any, where: str) -> int:
    uid = checks.integer(value, where, "uid", 1000, 2**31 - 2)
    if uid == LOG_READER_GID:
        checks.fail(where, "uid", f"{uid} is the log readers' group (helm/node-logs): pick another number")
    return uid


def user_and_uid(doc: Mapping[str, Any], where: str) -> tuple[str | None, int | None]:
    """`user:` (the account's name, or a uid[:gid] as older specs write it) and `uid:`."""
    uid = parse_uid(doc["uid"], where) if doc.get("uid") is not None else None
    if doc.get("user") is None:
        return None, uid
    text = checks.user(doc["user"], where, "user")
    if not text[0].isdigit():
        return text, uid
    uid_text, _, gid_text = text.partition(":")
    if gid_text and gid_text != uid_text:
        checks.fail(where, "user", f"{text!r}: an app's group is the number of its uid; write uid: {uid_text}")
    if uid is not None and uid != int(uid_text):
        checks.fail(where, "user", f"{text!r} and uid: {uid} differ: keep uid: alone")
    return None, parse_uid(int(uid_text), where)


def parse_writable(value: Any, where: str) -> tuple[Writable, ...]:
    """`writable:` a list of paths (relative to APP_HOME, or absolute), or of {path, sizeLimit}."""
    out: list[Writable] = []
    for i, item in enumerate(checks.string_list(value, where, "writable")):
        key = f"writable[{i}]"
        limit = None
        if isinstance(item, Mapping):
            checks.known_keys(item, frozenset({"path", "sizeLimit"}), where, key)
            if "path" not in item:
                checks.fail(where, f"{key}.path", "is required")
            if item.get("sizeLimit") is not None:
                limit = str(item["sizeLimit"]) if not isinstance(item["sizeLimit"], bool) else ""
                if not QUANTITY.fullmatch(limit):
                    checks.fail(where, f"{key}.sizeLimit", f"{item['sizeLimit']!r} is not a Kubernetes quantity "
                                "(e.g. 512Mi, 2Gi)")
            item, key = item["path"], f"{key}.path"
        out.append(Writable(_writable_path(item, where, key), limit))
    paths = [w.path for w in out]
    for i, path in enumerate(paths):
        for other in paths[:i]:
            if _under(path, other) or _under(other, path):
                checks.fail(where, f"writable[{i}]", f"{path!r} overlaps {other!r}: list one of them")
    return tuple(out)


def _writable_path(value: Any, where: str, key: str) -> str:
    text = checks.string(value, where, key)
    path = posixpath.normpath(text if text.startswith("/") else posixpath.join(APP_HOME, text))
    if ".." in text.split("/"):
        checks.fail(where, key, f"{text!r} must be a path without '..'")
    if path == APP_HOME or path in SYSTEM:
        checks.fail(where, key, f"{text!r} would hide the image's {path}: name a directory of its own, e.g. data")
    if not checks.REL_PATH.fullmatch(path.lstrip("/")):
        checks.fail(where, key, f"{text!r} has characters not allowed in a path (letters, digits, _@+=,.-/ only)")
    for reserved in RESERVED:
        if _under(path, reserved) or _under(reserved, path):
            checks.fail(where, key, f"{text!r} overlaps {reserved}, which the agent and the chart manage already")
    return path


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def link_path(subdir: str) -> str:
    """Where the agent places a log link for the image: on the run dir's writable mount. The
    image's own path (APP_HOME/logs, a servlet's log directory) is a link to it, made at build."""
    return f"{LINK_DIR}/{subdir.replace('/', '-')}"


def dockerfile_lines(name: str, uid: int, groups: tuple[str, ...], writable: tuple[str, ...],
                     redirects: tuple[tuple[str, str], ...], replace: bool = False) -> list[str]:
    """The account (uid N, its own group N), the directories the app and the agent may write, the
    links from the image's log paths to where the agent links them (`redirects`: (path, link)).
    `groups`: a servlet container's group, whose files (its config, 0640; its webapps, 0775) pass to
    the app's group N: a numeric USER gets no supplementary group from /etc/group under every
    runtime, its own group it always has. `replace`: the base has an account of that name, which
    gives way to the app's own. Everything else stays root's."""
    drop = f"userdel {name} && (groupdel {name} 2>/dev/null || true) && " if replace else ""
    cont = " \\\n    "
    adopt = "".join(f"{cont}&& find / -xdev -group {group} -exec chgrp -h {uid} {{}} +" for group in groups)
    dirs = " ".join([RUN_DIR, CONF_DIR, *writable])
    links = "".join(f"{cont}&& rm -rf {path} && ln -s {link} {path}" for path, link in redirects)
    return [
        "# The app's own user and group (uid = gid, docs/dockerfile-gen.md \"Users\"); its files stay root's.",
        f"RUN {drop}groupadd --system --gid {uid} {name}{cont}&& useradd --system --no-log-init --uid {uid} --gid {uid}"
        f" --home-dir {APP_HOME} --no-create-home --shell /usr/sbin/nologin {name}"
        f"{cont}&& install -d -o {uid} -g {uid} -m 0750 {dirs}{adopt}{links}",
    ]


def chart_values(writable: tuple[Writable, ...], uid: int, servlet_writable: tuple[str, ...], writable_root: bool,
                 root_mode: bool) -> dict[str, Any]:
    """What the chart needs to run the image under the "restricted" profile: the image's ids
    (runAsUser, runAsGroup), its writable directories (emptyDirs). A servlet container that
    unpacks WARs at start keeps a writable root filesystem; one whose config files the app
    replaces (links into its root-owned conf/) also needs the root mode (agent.user)."""
    values: dict[str, Any] = {"image": {"uid": uid, "gid": uid}}
    dirs = [{"path": w.path, **({"sizeLimit": w.size_limit} if w.size_limit else {})} for w in writable]
    dirs += [{"path": path} for path in servlet_writable]
    if dirs:
        values["writable"] = dirs
    if writable_root or root_mode:
        values["securityContext"] = {"readOnlyRootFilesystem": False}
    if root_mode:
        values["agent"] = {"user": f"{uid}:{uid}"}
    return values
