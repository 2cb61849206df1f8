"""The app's process group: what it uses (for the metrics, through psutil), which JVM runs in it
and which Java version that is, and the one-time hint about JVM thread dumps that the readiness
checker logs when it finds one.

Imported by the forked helpers only (the readiness checker and the HTTP helper), never by PID 1.
psutil is imported only by the metrics' scan: the checker's JVM scan and process states read
/proc directly, which keeps ~2.4 MB out of the checker (bench/run.py, section 2).
"""
from __future__ import annotations

import os
import time

from bootstrap import log
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

JVM_SCAN_INTERVAL = 1.0


class TreeSample:
    __slots__ = ("processes", "cpu", "rss", "threads", "fds", "jvm")

    def __init__(self) -> None:
        self.processes = self.rss = self.threads = self.fds = 0
        self.cpu = 0.0
        self.jvm: tuple[int, float] | None = None  # (pid, create_time) of a java process


class AppTree:
    """The app's process group (pgid == app pid).

    CPU is a counter: processes that left the group keep their last-seen CPU time in `gone_cpu`,
    so the total never goes down when a worker exits (the time it used after the last scrape is lost).
    """

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.last_cpu: dict[tuple[int, float], float] = {}
        self.gone_cpu = 0.0

    def sample(self) -> TreeSample:
        import psutil

        sample, seen = TreeSample(), {}
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) != self.pgid:
                    continue
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    times = proc.cpu_times()
                    cpu = times.user + times.system
                    rss, threads, name = proc.memory_info().rss, proc.num_threads(), proc.name()
                    fds = _num_fds(proc)
            except (OSError, psutil.Error):
                continue  # gone meanwhile, a zombie, or not ours to look at
            seen[key] = cpu
            sample.processes += 1
            sample.rss += rss
            sample.threads += threads
            sample.fds += fds
            if name == "java" and sample.jvm is None:
                sample.jvm = key
        self.gone_cpu += sum(cpu for key, cpu in self.last_cpu.items() if key not in seen)
        self.last_cpu = seen
        sample.cpu = self.gone_cpu + sum(seen.values())
        return sample


def _num_fds(proc: Any) -> int:
    import psutil

    try:
        return int(proc.num_fds())
    except psutil.AccessDenied:
        return 0  # another user's process without CAP_SYS_PTRACE: counted as none


def proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, process group) from /proc/PID/stat, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    head, _, rest = data.rpartition(b")")
    fields = rest.split()
    return head.partition(b"(")[2].decode(errors="replace"), fields[0].decode(), int(fields[2])


def find_jvm(pgid: int) -> int | None:
    """The pid of a JVM (`java` by comm or exe name) in the app's process group, if any."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = proc_stat(int(entry))
        if stat is None or stat[2] != pgid:
            continue
        try:
            exe = os.path.basename(os.readlink(f"/proc/{entry}/exe"))
        except OSError:
            exe = ""  # gone meanwhile, or not ours to read
        if "java" in (stat[0], exe):
            return int(entry)
    return None


class JvmHint:
    """Logs once that a JVM in the app's group would print a thread dump on a slow stop with
    BOOTSTRAP_THREAD_DUMP=1. Looks at most every JVM_SCAN_INTERVAL, until it finds one or the app
    is ready: a JVM that is not there by then is not coming."""

    def __init__(self, pgid: int, done: bool = False) -> None:
        self.pgid = pgid
        self.done = done  # a restarted checker does not repeat the hint
        self.scan_at = 0.0

    def poll(self, app_ready: bool) -> None:
        now = time.monotonic()
        if self.done or now < self.scan_at:
            return
        self.scan_at = now + JVM_SCAN_INTERVAL
        try:
            jvm = find_jvm(self.pgid)
        except Exception as exc:  # a /proc surprise must not cost readiness
            log.debug(f"readiness: looking for a JVM failed: {type(exc).__name__}: {exc}")
            jvm = None
        if jvm is not None:
            log.info(f"found a JVM (pid {jvm}) in the app's process group: BOOTSTRAP_THREAD_DUMP=1 makes the "
                     "stop send SIGQUIT one second before the SIGKILL, so the JVM prints a thread dump")
        self.done = jvm is not None or app_ready


def jvm_version(pid: int, proc_root: str = "/proc") -> str:
    """The Java version of a running JVM: JAVA_VERSION in its environment (the Temurin images set
    it), else the `release` file of its java.home (found from /proc/PID/exe), else "unknown"."""
    try:
        with open(f"{proc_root}/{pid}/environ", "rb") as fh:
            for item in fh.read().split(b"\0"):
                if item.startswith(b"JAVA_VERSION="):
                    return item.partition(b"=")[2].decode(errors="replace")[:64] or "unknown"
    except OSError:
        pass
    try:
        exe = os.path.realpath(f"{proc_root}/{pid}/exe")
    except OSError:
        return "unknown"
    home = os.path.dirname(os.path.dirname(exe))  # <java.home>/bin/java
    for candidate in (home, os.path.dirname(home)):  # Java 8: <jdk>/jre/bin/java, release in <jdk>
        version = release_version(os.path.join(candidate, "release"))
        if version:
            return version
    return "unknown"


def release_version(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("JAVA_VERSION="):
                    return line.partition("=")[2].strip().strip('"')[:64] or None
    except OSError:
        pass
    return None
