"""cgroups.read_limits on fake cgroup v1 and v2 trees under tmp_path, and on this machine."""
from __future__ import annotations

import os
from pathlib import Path

from bootstrap.pid1 import cgroups

MiB = 1 << 20
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 {root} /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2_MOUNTINFO = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v1_tree(root: Path, path: str, mount_root: str = "/", limit: int = 512 * MiB,
            quota: int = 150000, oom_kill: int = 2) -> Path:
    write(root / "proc/self/cgroup", f"4:memory:{path}\n2:cpu,cpuacct:{path}\n0::/\n")
    write(root / "proc/self/mountinfo", V1_MOUNTINFO.format(root=mount_root))
    relative = path[len(mount_root):] if mount_root != "/" else path
    memory = root / "sys/fs/cgroup/memory" / relative.lstrip("/")
    write(memory / "memory.limit_in_bytes", f"{limit}\n")
    write(memory / "memory.stat", f"cache 0\nrss 0\nhierarchical_memory_limit {limit}\n")
    write(memory / "memory.oom_control", f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom_kill}\n")
    cpu = root / "sys/fs/cgroup/cpu,cpuacct" / path.lstrip("/")
    write(cpu / "cpu.cfs_quota_us", f"{quota}\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    return memory


def test_v1_limit_quota_and_oom_count(tmp_path: Path) -> None:
    memory = v1_tree(tmp_path, "/kubepods/pod1/abc")
    limits = cgroups.read_limits(str(tmp_path))
    assert limits.memory == 512 * MiB
    assert limits.memory_source == str(memory / "memory.stat")
    assert limits.cpus == 1.5
    assert limits.oom_kills == 2
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n")
    assert cgroups.oom_kills(limits.oom_source) == 5


def test_v1_hierarchical_limit_of_a_parent_binds(tmp_path: Path) -> None:
    """A child group without its own limit still lives under its parent's: memory.stat says so."""
    memory = v1_tree(tmp_path, "/pod/app", limit=(1 << 63) - 4096)
    (memory / "memory.stat").write_text("cache 0\nhierarchical_memory_limit 268435456\n")
    assert cgroups.read_limits(str(tmp_path)).memory == 256 * MiB


def test_v1_container_sees_its_own_group_as_the_mount_root(tmp_path: Path) -> None:
    """In a container the memory hierarchy is mounted with root = the pod's cgroup."""
    v1_tree(tmp_path, "/kubepods/pod1/abc", mount_root="/kubepods/pod1/abc", limit=1024 * MiB)
    assert cgroups.read_limits(str(tmp_path)).memory == 1024 * MiB


def test_v1_unlimited_and_no_quota(tmp_path: Path) -> None:
    v1_tree(tmp_path, "/", limit=9223372036854771712, quota=-1)
    limits = cgroups.read_limits(str(tmp_path))
    assert limits.memory is None and "no limit" in limits.memory_source
    assert limits.cpus is None


def v2_tree(root: Path, path: str, limits: dict[str, str], cpu_max: str = "max 100000") -> Path:
    write(root / "proc/self/cgroup", f"0::{path}\n")
    write(root / "proc/self/mountinfo", V2_MOUNTINFO)
    base = root / "sys/fs/cgroup"
    for relative, value in limits.items():
        write(base / relative / "memory.max", value + "\n")
    group = base / path.lstrip("/")
    write(group / "memory.max", limits.get(path.lstrip("/"), "max") + "\n")
    write(group / "memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n")
    write(group / "cpu.max", cpu_max + "\n")
    return group


def test_v2_limit_quota_and_oom_count(tmp_path: Path) -> None:
    scope = "kubepods.slice/pod.slice/cri.scope"
    group = v2_tree(tmp_path, "/" + scope, {scope: str(768 * MiB)}, cpu_max="250000 100000")
    limits = cgroups.read_limits(str(tmp_path))
    assert limits.memory == 768 * MiB
    assert limits.cpus == 2.5
    assert limits.oom_kills == 1 and limits.oom_source == str(group / "memory.events")


def test_v2_smallest_limit_up_the_tree_wins(tmp_path: Path) -> None:
    v2_tree(tmp_path, "/pod.slice/app.scope", {"pod.slice": str(300 * MiB), "pod.slice/app.scope": "max"})
    limits = cgroups.read_limits(str(tmp_path))
    assert limits.memory == 300 * MiB
    assert limits.memory_source.endswith("pod.slice/memory.max")
    assert limits.cpus is None


def test_v2_no_limit(tmp_path: Path) -> None:
    v2_tree(tmp_path, "/user.slice", {})
    assert cgroups.read_limits(str(tmp_path)).memory is None


def test_nothing_mounted(tmp_path: Path) -> None:
    write(tmp_path / "proc/self/cgroup", "garbage\n")
    limits = cgroups.read_limits(str(tmp_path))
    assert limits.memory is None and limits.oom_kills is None and limits.oom_source is None


def test_this_machine_agrees_with_the_kernel() -> None:
    """The real tree: what read_limits reports is what the memory controller's files say."""
    limits = cgroups.read_limits()
    group = cgroups.find()
    assert group.version in (1, 2)
    assert group.memory_dir and os.path.isdir(group.memory_dir)
    name = "memory.oom_control" if group.version == 1 else "memory.events"
    assert limits.oom_source == os.path.join(group.memory_dir, name)
    assert isinstance(limits.oom_kills, int)


def test_a_limit_above_the_hosts_memory_is_capped_at_memtotal(tmp_path: Path) -> None:
    """A limit the node cannot give (8× its RAM) is no limit to size by: the heap would be 8× too
    large. The plan says where the number came from."""
    scope = "kubepods.slice/pod.slice/cri.scope"
    v2_tree(tmp_path, "/" + scope, {scope: str(8 * 1024 * MiB)})
    write(tmp_path / "proc/meminfo", "MemTotal:        1048576 kB\nMemFree:          524288 kB\n")
    limits = cgroups.read_limits(str(tmp_path))
    assert limits.memory == 1024 * MiB
    assert limits.memory_source.startswith(str(tmp_path / "sys/fs/cgroup" / scope / "memory.max"))
    assert "8192 MiB" in limits.memory_source and "MemTotal" in limits.memory_source
    v1_tree(tmp_path / "v1", "/pod/app", limit=512 * MiB)  # below the host's memory: kept as it is
    write(tmp_path / "v1/proc/meminfo", "MemTotal:        1048576 kB\n")
    assert cgroups.read_limits(str(tmp_path / "v1")).memory == 512 * MiB
