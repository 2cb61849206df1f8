"""The container's limits as the kernel enforces them: memory limit, CPU quota and the OOM-kill
counter of the cgroup this process is in, on cgroup v1 and v2.

Found the way the JVM finds them: /proc/self/cgroup names the cgroup, /proc/self/mountinfo the
mount of its hierarchy. On a hybrid host (v1 controllers plus an empty v2 mount) the v1 memory
controller wins. A limit above the host's memory (MemTotal in /proc/meminfo) is capped at it: the
node runs out first. `root` prefixes every path, so tests run on fake trees.
Standard library only, a handful of small reads: PID 1 does this before the app starts.
"""
from __future__ import annotations

import os

from bootstrap.frozen import frozen

UNLIMITED = 1 << 62  # v1 reports "no limit" as a page-rounded 2^63-1; anything this large means none


@frozen
class Cgroup:
    version: int  # 1 or 2; 0 when none was found
    memory_dir: str | None  # the directory holding this cgroup's memory files
    cpu_dir: str | None


@frozen
class Limits:
    memory: int | None  # bytes, never above the host's memory; None: no limit
    memory_source: str  # the file it came from (and the cap, when the host has less), or why there is none
    cpus: float | None  # the CFS quota in CPUs; None: no quota
    cpu_source: str
    oom_kills: int | None  # the kernel's OOM-kill count for this cgroup; None: not available
    oom_source: str | None  # the file to read it from again at exit


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _mounts(root: str) -> list[tuple[str, str, str, set[str]]]:
    """(fs type, mount root, mount point, super options) of every cgroup mount."""
    text = _read(os.path.join(root, "proc/self/mountinfo")) or ""
    mounts = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append((rest[0], fields[3], fields[4], set(rest[2].split(","))))
    return mounts


def _resolve(root: str, mount_root: str, mount_point: str, path: str) -> str:
    """The directory of cgroup `path` under a mount of `mount_root` (the JVM's rule): a container
    usually sees its own cgroup mounted as the hierarchy's root."""
    if mount_root == "/":
        relative = path
    elif path == mount_root or path.startswith(mount_root.rstrip("/") + "/"):
        relative = path[len(mount_root):]
    else:
        relative = "/"
    directory = os.path.join(root, mount_point.lstrip("/"), relative.lstrip("/"))
    if not os.path.isdir(directory):  # e.g. a cgroup namespace hides the path: use the mount itself
        directory = os.path.join(root, mount_point.lstrip("/"))
    return os.path.normpath(directory)


def find(root: str = "/") -> Cgroup:
    text = _read(os.path.join(root, "proc/self/cgroup")) or ""
    v1: dict[str, str] = {}
    v2_path = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        for controller in parts[1].split(","):
            if controller:
                v1[controller] = parts[2]
    mounts = _mounts(root)

    def v1_dir(controller: str) -> str | None:
        if controller not in v1:
            return None
        for fstype, mount_root, point, options in mounts:
            if fstype == "cgroup" and controller in options:
                return _resolve(root, mount_root, point, v1[controller])
        return None

    memory_dir, cpu_dir = v1_dir("memory"), v1_dir("cpu")
    if memory_dir is not None:
        return Cgroup(1, memory_dir, cpu_dir)
    if v2_path is not None:
        for fstype, mount_root, point, _options in mounts:
            if fstype == "cgroup2":
                directory = _resolve(root, mount_root, point, v2_path)
                if os.path.exists(os.path.join(directory, "memory.max")) or v2_path == "/":
                    return Cgroup(2, directory, directory)
    return Cgroup(0, None, cpu_dir)


def _number(text: str | None) -> int | None:
    text = (text or "").strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return None


def _keyed(text: str | None, key: str) -> int | None:
    """The value of `key N` in a flat-keyed file such as memory.stat or memory.events."""
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return _number(value)
    return None


def _v2_memory(directory: str, stop: str) -> tuple[int | None, str]:
    """The smallest memory.max from this cgroup up to the mount point: a parent's limit binds too."""
    best: tuple[int | None, str] = (None, "no memory.max limit in the cgroup or its parents")
    current = directory
    while True:
        path = os.path.join(current, "memory.max")
        value = _number(_read(path))
        if value is not None and value < UNLIMITED and (best[0] is None or value < best[0]):
            best = (value, path)
        if current == stop or len(current) <= len(stop) or current == os.path.dirname(current):
            return best
        current = os.path.dirname(current)


def host_memory(root: str = "/") -> tuple[int | None, str]:
    """MemTotal of /proc/meminfo in bytes (None when unreadable), and the file."""
    path = os.path.join(root, "proc/meminfo")
    for line in (_read(path) or "").splitlines():
        name, _, rest = line.partition(":")
        if name == "MemTotal":
            kib = _number(rest.strip().removesuffix("kB"))
            return (kib * 1024 if kib else None), path
    return None, path


def read_limits(root: str = "/") -> Limits:
    group = find(root)
    memory: int | None = None
    memory_source = "no cgroup memory controller found"
    oom_kills: int | None = None
    oom_source: str | None = None
    cpus: float | None = None
    cpu_source = "no CPU quota"
    if group.version == 1 and group.memory_dir:
        # hierarchical_memory_limit is the smallest limit of this cgroup and its ancestors
        stat_path = os.path.join(group.memory_dir, "memory.stat")
        value = _keyed(_read(stat_path), "hierarchical_memory_limit")
        if value is None:
            stat_path = os.path.join(group.memory_dir, "memory.limit_in_bytes")
            value = _number(_read(stat_path))
        if value is not None and value < UNLIMITED:
            memory, memory_source = value, stat_path
        else:
            memory_source = f"no limit in {stat_path}"
        oom_source = os.path.join(group.memory_dir, "memory.oom_control")
        oom_kills = _keyed(_read(oom_source), "oom_kill")
    elif group.version == 2 and group.memory_dir:
        mount = group.memory_dir
        for fstype, _mount_root, point, _options in _mounts(root):
            if fstype == "cgroup2":
                mount = os.path.normpath(os.path.join(root, point.lstrip("/")))
        memory, memory_source = _v2_memory(group.memory_dir, mount)
        oom_source = os.path.join(group.memory_dir, "memory.events")
        oom_kills = _keyed(_read(oom_source), "oom_kill")
    host, meminfo = host_memory(root)
    if memory is not None and host is not None and memory > host:
        memory_source = f"{memory_source}: {memory >> 20} MiB, more than the host's memory; capped at MemTotal of {meminfo}"
        memory = host
    if oom_kills is None:
        oom_source = None
    if group.version == 2 and group.cpu_dir:
        path = os.path.join(group.cpu_dir, "cpu.max")
        quota, _, period = (_read(path) or "").strip().partition(" ")
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            cpus, cpu_source = int(quota) / int(period), path
    elif group.cpu_dir:
        quota_path = os.path.join(group.cpu_dir, "cpu.cfs_quota_us")
        quota_us = _number(_read(quota_path))
        period_us = _number(_read(os.path.join(group.cpu_dir, "cpu.cfs_period_us")))
        if quota_us is not None and quota_us > 0 and period_us:
            cpus, cpu_source = quota_us / period_us, quota_path
    return Limits(memory, memory_source, cpus, cpu_source, oom_kills, oom_source)


def oom_kills(source: str | None) -> int | None:
    """The OOM-kill count now, from the file read_limits found (v1 memory.oom_control, v2 memory.events)."""
    return _keyed(_read(source), "oom_kill") if source else None
