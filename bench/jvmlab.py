"""A real JVM under a real cgroup v1 memory limit: the Java workloads in bench/jvm/, compiled with
javac, run in a memory cgroup this module creates (and removes), either bare with a sizing
strategy's flags or under `bootstrap run` as PID 1 of a new PID namespace with `jvm: auto`.

Shared by `make bench` (bench/jvm_memory.py, the whole matrix) and tests/jvm (one case per limit).
Needs root, cgroup v1's memory controller at /sys/fs/cgroup/memory and a JDK (javac).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "bench" / "jvm"
MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
MiB = 1 << 20
LIMITS = {"256 Mi": 256 * MiB, "512 Mi": 512 * MiB, "1 Gi": 1024 * MiB, "2 Gi": 2048 * MiB}
WORKLOADS = {"heap filler": "HeapFill", "500 threads": "Threads", "direct buffers": "DirectFill",
             "many loaded classes": "ClassFill"}
PAKETO_CLASSES = 10_000  # loaded classes assumed for the Paketo-style column (its 35% of a small app + the JDK)


def javac() -> str | None:
    return shutil.which("javac")


def compile_workloads(dest: Path) -> Path:
    """javac of bench/jvm/*.java into dest, skipped when the classes are newer than the sources."""
    sources = sorted(SOURCES.glob("*.java"))
    newest = max(s.stat().st_mtime for s in sources)
    stamp = dest / ".compiled"
    if stamp.exists() and stamp.stat().st_mtime >= newest:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    compiler = javac()
    if compiler is None:
        raise RuntimeError("javac is missing: install openjdk-17-jdk-headless (deps/apt-tests.txt)")
    subprocess.run([compiler, "-d", str(dest), *map(str, sources)], check=True)
    stamp.touch()
    return dest


def paketo_flags(limit: int, classes: int = PAKETO_CLASSES) -> list[str] | None:
    """Paketo's memory calculator with its defaults (250 threads × 1 MiB stacks, 240 MiB code cache,
    10 MiB direct memory, 0% headroom, metaspace 14 MB + 5,800 B per loaded class); None when its
    fixed regions alone exceed the limit (it refuses to start)."""
    metaspace = 14_000_000 + 5_800 * classes
    fixed = metaspace + 240 * MiB + 10 * MiB + 250 * MiB
    if fixed >= limit:
        return None
    return [f"-Xmx{(limit - fixed) // 1024}K", f"-XX:MaxMetaspaceSize={metaspace // 1024}K",
            "-XX:ReservedCodeCacheSize=240M", "-XX:MaxDirectMemorySize=10M", "-Xss1M"]


class MemoryCgroup:
    """A cgroup v1 memory group with a hard limit (swap included when the kernel accounts it)."""

    def __init__(self, name: str, limit: int) -> None:
        self.path = MEMORY_ROOT / f"{name}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(limit))
        memsw = self.path / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(limit))
        self.limit = limit

    def read(self, name: str) -> str:
        return (self.path / name).read_text()

    def oom_kills(self) -> int:
        for line in self.read("memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak(self) -> int:
        return int(self.read("memory.max_usage_in_bytes"))

    def enter(self) -> None:
        """In the child, before exec: move this process into the group."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        deadline = time.monotonic() + 30
        while self.read("cgroup.procs").strip() and time.monotonic() < deadline:
            for pid in self.read("cgroup.procs").split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.05)
        self.path.rmdir()


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    oom_kills: int
    peak: int
    limit: int
    seconds: float
    record: dict[str, object] = field(default_factory=dict)  # the exit line of .bootstrap.jsonl
    log_dir: Path | None = None

    def last(self, key: str) -> int | None:
        """The last `key N` line the workload printed."""
        value = None
        for line in self.stdout.splitlines():
            name, _, number = line.partition(" ")
            if name == key and number.strip().isdigit():
                value = int(number)
        return value


def run_in_cgroup(argv: list[str], env: dict[str, str], limit: int, name: str, timeout: float = 300) -> Run:
    group = MemoryCgroup(name, limit)
    began = time.monotonic()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=group.enter)
        return Run(proc.returncode, proc.stdout, proc.stderr, group.oom_kills(), group.peak(), limit,
                   time.monotonic() - began)
    finally:
        group.remove()


def bare(workload: str, classes: Path, flags: list[str], limit: int, name: str) -> Run:
    java = shutil.which("java") or "/usr/bin/java"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return run_in_cgroup([java, *flags, "-cp", str(classes), workload], env, limit, name)


def app_env(work: Path, **extra: str) -> dict[str, str]:
    """An APP_HOME with one environment and a log root under work, for `bootstrap run`."""
    (work / "app" / "conf.d" / "prod").mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "APP_NAME": "jvmlab", "APP_ENV": "prod",
           "APP_HOME": str(work / "app"), "BOOTSTRAP_LOG_ROOT": str(work / "logs"),
           "BOOTSTRAP_RUN_DIR": str(work / "run"), "POD_IP": "10.0.0.9",
           "BOOTSTRAP_TERMINATION_LOG": str(work / "termination-log")}
    (work / "termination-log").write_text("")
    env.update(extra)
    return env


def bootstrap_binary() -> str:
    candidate = Path(sys.executable).with_name("bootstrap")
    return str(candidate if candidate.exists() else ROOT / ".venv" / "bin" / "bootstrap")


def under_agent(workload: str, classes: Path, limit: int, work: Path, name: str,
                java_flags: tuple[str, ...] = (), **env_extra: str) -> Run:
    """`bootstrap run -- java … WORKLOAD` as PID 1 of a new PID namespace, inside the cgroup."""
    java = shutil.which("java") or "/usr/bin/java"
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    env = app_env(work, **env_extra)
    argv = [unshare, "--pid", "--fork", "--mount-proc", bootstrap_binary(), "run", "--",
            java, *java_flags, "-cp", str(classes), workload]
    result = run_in_cgroup(argv, env, limit, name)
    log_dir = work / "logs" / "jvmlab" / "10.0.0.9"
    result.log_dir = log_dir
    records = log_dir / ".bootstrap.jsonl"
    if records.exists():
        exits = [json.loads(line) for line in records.read_text().splitlines() if '"exit"' in line]
        result.record = exits[-1] if exits else {}
    return result
