"""The agent's Prometheus metrics: what the run dir's files say, read at scrape time.

Three processes know things, and each writes one file in the run dir, atomically:

- PID 1: `supervisor.json` (phases, signals forwarded, zombies reaped, helper restarts);
- the readiness checker: `status.json` and `checks.json` (per-check counts, failures and a
  duration histogram, transitions into ready, time to ready), through `CheckStats` below;
- nobody else: the app's process tree and the log directory are looked at directly.

`Collector` turns them into metric families for a `prometheus_client.CollectorRegistry` of its
own (never the global one) in the HTTP helper. This module's top level is standard library only:
the checker imports it for `CheckStats`, and prometheus_client and psutil are imported where the
collection happens, in the helper, on the first scrape.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time

from bootstrap import __version__, status
from bootstrap.logdirs import RECORD_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from bootstrap.settings import Settings

CHECKS_FILE = "checks.json"
# Check durations, seconds: a local TCP connect takes well under a millisecond, a command up to
# CMD_TIMEOUT (10 s).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CHECK_KINDS = ("tcp", "http", "log", "cmd", "running")
SAVE_INTERVAL = 1.0  # checks.json is rewritten at most this often, except on a state change
LOG_DIR_INTERVAL = 60.0  # the log dir is walked at most this often
LOG_DIR_MAX_ENTRIES = 20000  # and never further than this many entries
RECORDS_MAX_BYTES = 4 << 20  # only the last 4 MiB of .bootstrap.jsonl are counted
STATES = status.STATES
CAUSE_RE = re.compile(rb'"cause": "([a-z-]+)"')
EVENT_RE = re.compile(rb'"event": "(start|exit)"')
CAUSES = ("exited", "signal", "stopped", "killed-after-timeout")


# --- the checker's side: checks.json ----------------------------------------------------------


def read_json(path: str) -> dict[str, Any]:
    return status.read_json(path) or {}


class CheckStats:
    """Counts kept by the readiness checker and saved to RUN_DIR/checks.json.

    A restarted checker (same app pid) carries on from the file, so the counters only go up for
    the life of the app. Writes are cheap: at most one per SAVE_INTERVAL, plus one per state change.
    """

    def __init__(self, run_dir: str, app_pid: int, started_at: float) -> None:
        self.path = os.path.join(run_dir, CHECKS_FILE)
        self.app_pid, self.started_at = app_pid, started_at
        previous = read_json(self.path)
        mine = previous.get("app_pid") == app_pid and previous.get("le") == list(BUCKETS)
        self.checks: dict[str, dict[str, Any]] = previous.get("checks", {}) if mine else {}
        self.transitions: int = previous.get("ready_transitions", 0) if mine else 0
        self.time_to_ready: float | None = previous.get("time_to_ready") if mine else None
        self.dirty = self.urgent = not mine
        self.saved_at = 0.0

    def observe(self, kind: str, seconds: float, ok: bool) -> None:
        entry = self.checks.setdefault(kind, {"count": 0, "failures": 0, "sum": 0.0,
                                              "buckets": [0] * (len(BUCKETS) + 1)})
        entry["count"] += 1
        entry["failures"] += 0 if ok else 1
        entry["sum"] += seconds
        entry["buckets"][next((i for i, le in enumerate(BUCKETS) if seconds <= le), len(BUCKETS))] += 1
        self.dirty = True

    def entered(self, state: str, now: float) -> None:
        """The checker published a new state (`now` is wall-clock time)."""
        if state == "ready":
            self.transitions += 1
            if self.time_to_ready is None:
                self.time_to_ready = max(0.0, now - self.started_at)
        self.dirty = self.urgent = True

    def save(self, now: float) -> None:
        """Writes checks.json if something changed and it is due (`now` is monotonic)."""
        if not self.dirty or (not self.urgent and now - self.saved_at < SAVE_INTERVAL):
            return
        doc = {"app_pid": self.app_pid, "le": list(BUCKETS), "checks": self.checks,
               "ready_transitions": self.transitions, "time_to_ready": self.time_to_ready}
        try:
            status.write_atomic(self.path, (json.dumps(doc, sort_keys=True) + "\n").encode())
        except OSError:
            return  # a full or read-only run dir costs the metrics, never readiness; retried later
        self.dirty = self.urgent = False
        self.saved_at = now


# --- the app's process tree --------------------------------------------------------------------


class TreeSample:
    __slots__ = ("processes", "cpu", "rss", "threads", "fds", "jvm")

    def __init__(self) -> None:
        self.processes = self.rss = self.threads = self.fds = 0
        self.cpu = 0.0
        self.jvm: tuple[int, float] | None = None  # (pid, create_time) of a java process


class AppTree:
    """The app's process group (pgid == app pid), through psutil.

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


# --- the log directory -------------------------------------------------------------------------


def dir_bytes(root: str, cap: int = LOG_DIR_MAX_ENTRIES) -> tuple[int, bool]:
    """Apparent size of the regular files under root (symlinks not followed); (bytes, complete)."""
    total, entries, stack = 0, 0, [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    if entries > cap:
                        return total, False
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # removed meanwhile (rotation)
        except OSError:
            continue
    return total, True


def record_counts(path: str) -> tuple[int, dict[str, int]]:
    """Start records and exit records by cause in a log dir's .bootstrap.jsonl (its last 4 MiB)."""
    starts, causes = 0, dict.fromkeys(CAUSES, 0)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - RECORDS_MAX_BYTES))
            data = fh.read(RECORDS_MAX_BYTES)
    except OSError:
        return 0, causes
    for line in data.splitlines():
        event = EVENT_RE.search(line)
        if event is None:
            continue
        if event.group(1) == b"start":
            starts += 1
            continue
        cause = CAUSE_RE.search(line)
        name = cause.group(1).decode() if cause else ""
        if name in causes:  # bounded labels: an unknown cause is not exported
            causes[name] += 1
    return starts, causes


class LogDir:
    """The log dir's size and its records, refreshed at most every LOG_DIR_INTERVAL seconds."""

    def __init__(self, link: str, clock: Callable[[], float]) -> None:
        self.link, self.clock = link, clock
        self.next_at = 0.0
        self.bytes = 0
        self.starts, self.causes = 0, dict.fromkeys(CAUSES, 0)

    def refresh(self) -> None:
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + LOG_DIR_INTERVAL
        directory = os.path.realpath(self.link)  # LOG_LINK points at this container's log dir
        self.bytes, _capped = dir_bytes(directory)  # a capped walk still gives a useful lower bound
        self.starts, self.causes = record_counts(os.path.join(directory, RECORD_FILE))


# --- the collector -------------------------------------------------------------------------------


def parse_iso(text: Any) -> float | None:
    """status.iso_time's format back to a Unix time."""
    import calendar

    if not isinstance(text, str) or len(text) < 19:
        return None
    try:
        whole = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    millis = text[20:23]
    return whole + (int(millis) / 1000 if millis.isdigit() else 0.0)


class Collector:
    """A custom collector (prometheus_client calls `collect` on each scrape). Thread-safe: the
    HTTP server answers each request in a thread of its own."""

    def __init__(self, run_dir: str, app_pid: int, info: dict[str, str], log_link: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir, self.app_pid, self.info = run_dir, app_pid, info
        self.tree = AppTree(app_pid)
        self.log_dir = LogDir(log_link, clock)
        self.jvm_versions: dict[tuple[int, float], str] = {}
        self.lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings, app_pid: int) -> Collector:
        info = {"app": settings.app_name, "env": settings.env, "version": __version__,
                "base_image": settings.image or ""}
        return cls(settings.run_dir, app_pid, info, settings.log_link)

    def describe(self) -> list[Any]:
        return []  # nothing to check at registration; collecting then would cost a /proc walk

    def collect(self) -> list[Any]:
        with self.lock:
            supervisor = read_json(os.path.join(self.run_dir, status.SUPERVISOR_FILE))
            state = status.read(self.run_dir) or {}
            checks = read_json(os.path.join(self.run_dir, CHECKS_FILE))
            ready = status.probe(self.run_dir, "ready")
            self.log_dir.refresh()
            tree = self.tree.sample()
            jvm = None
            if tree.jvm is not None:
                if tree.jvm not in self.jvm_versions:
                    self.jvm_versions = {tree.jvm: jvm_version(tree.jvm[0])}  # one JVM cached
                jvm = self.jvm_versions[tree.jvm]
            return (lifecycle_families(supervisor, state, checks, ready)
                    + check_families(checks) + process_families(supervisor, tree)
                    + info_families(self.info, jvm, self.log_dir))


def _dict(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def lifecycle_families(supervisor: dict[str, Any], state: dict[str, Any], checks: dict[str, Any],
                       ready: bool) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    phases = GaugeMetricFamily("bootstrap_phase_seconds", "Seconds each start-up phase took: config links, "
                               "log directory, spawning the app, and from spawn to the first ready.",
                               labels=["phase"])
    spent = _dict(supervisor, "phases")
    for phase in ("config", "logs", "spawn"):
        if isinstance(spent.get(phase), (int, float)):
            phases.add_metric([phase], float(spent[phase]))
    to_ready = checks.get("time_to_ready")
    if isinstance(to_ready, (int, float)):
        phases.add_metric(["ready"], max(0.0, to_ready - float(spent.get("spawn") or 0.0)))
    families: list[Any] = [phases,
                GaugeMetricFamily("bootstrap_ready", "1 while the app is ready (the `ready` file exists), else 0.",
                                  value=1.0 if ready else 0.0),
                CounterMetricFamily("bootstrap_ready_transitions", "Times the app's state became ready.",
                                    value=float(checks.get("ready_transitions") or 0))]
    if isinstance(to_ready, (int, float)):
        families.append(GaugeMetricFamily("bootstrap_time_to_ready_seconds",
                                          "Seconds from the app's spawn to its first ready.", value=float(to_ready)))
    one_hot = GaugeMetricFamily("bootstrap_state", "1 for the agent's current state (status.json), 0 for the others.",
                                labels=["state"])
    for name in STATES:
        one_hot.add_metric([name], 1.0 if state.get("state") == name else 0.0)
    families.append(one_hot)
    started = parse_iso(supervisor.get("started_at"))
    if started is not None:
        families.append(GaugeMetricFamily("bootstrap_start_time_seconds",
                                          "Unix time the agent spawned the app.", value=started))
    return families


def check_families(checks: dict[str, Any]) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

    durations = HistogramMetricFamily("bootstrap_check_duration_seconds", "Duration of each readiness check run.",
                                      labels=["check"])
    failures = CounterMetricFamily("bootstrap_check_failures", "Readiness check runs that failed.", labels=["check"])
    bounds = checks.get("le")
    entries = _dict(checks, "checks")
    for kind in CHECK_KINDS:
        entry = entries.get(kind)
        if not isinstance(entry, dict) or not isinstance(bounds, list) \
                or len(entry.get("buckets", ())) != len(bounds) + 1:
            continue
        cumulative, buckets = 0, []
        for le, count in zip([*(_le(b) for b in bounds), "+Inf"], entry["buckets"]):
            cumulative += int(count)
            buckets.append((le, float(cumulative)))
        durations.add_metric([kind], buckets, float(entry.get("sum", 0.0)))
        failures.add_metric([kind], float(entry.get("failures", 0)))
    return [durations, failures]


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


COMMON_SIGNALS = ("SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")


def process_families(supervisor: dict[str, Any], tree: TreeSample) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    forwarded = CounterMetricFamily("bootstrap_signals_forwarded", "Signals forwarded to the app's process group.",
                                    labels=["signal"])
    # The signals an operator sends start at 0, so rate() and increase() see the first one too.
    signals = {**dict.fromkeys(COMMON_SIGNALS, 0), **_dict(supervisor, "signals_forwarded")}
    for name, count in sorted(signals.items()):
        if isinstance(name, str) and name.startswith("SIG"):  # signal names are a bounded set
            forwarded.add_metric([name], float(count))
    restarts = _dict(supervisor, "helper_restarts")
    return [
        forwarded,
        CounterMetricFamily("bootstrap_zombies_reaped", "Orphaned processes reaped by the agent (the app excluded).",
                            value=float(supervisor.get("zombies_reaped") or 0)),
        CounterMetricFamily("bootstrap_checker_restarts", "Times the readiness checker was restarted.",
                            value=float(restarts.get("readiness checker") or 0)),
        CounterMetricFamily("bootstrap_app_cpu_seconds", "User and system CPU seconds used by the app's process group.",
                            value=tree.cpu),
        GaugeMetricFamily("bootstrap_app_resident_memory_bytes",
                          "Sum of the resident set sizes of the app's process group (shared pages count once per process).",
                          value=float(tree.rss)),
        GaugeMetricFamily("bootstrap_app_threads", "Threads in the app's process group.", value=float(tree.threads)),
        GaugeMetricFamily("bootstrap_app_open_fds", "Open file descriptors in the app's process group.",
                          value=float(tree.fds)),
        GaugeMetricFamily("bootstrap_app_processes", "Processes in the app's process group.",
                          value=float(tree.processes)),
    ]


def info_families(info: dict[str, str], jvm: str | None, log_dir: LogDir) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

    families: list[Any] = [InfoMetricFamily("bootstrap", "The app and agent this endpoint belongs to.", value=info)]
    if jvm is not None:
        families.append(InfoMetricFamily("bootstrap_jvm", "The JVM found in the app's process group.",
                                         value={"version": jvm}))
    families.append(GaugeMetricFamily("bootstrap_log_dir_bytes", "Bytes of the files in the app's log directory "
                                      f"(refreshed every {LOG_DIR_INTERVAL:g}s; at most {LOG_DIR_MAX_ENTRIES} entries).",
                                      value=float(log_dir.bytes)))
    families.append(CounterMetricFamily("bootstrap_starts", "Start records in the log directory's .bootstrap.jsonl "
                                        "(this run and earlier runs that used the same directory).",
                                        value=float(log_dir.starts)))
    exits = CounterMetricFamily("bootstrap_exits", "Exit records in the log directory's .bootstrap.jsonl, by cause "
                                "(earlier runs that used the same directory).", labels=["cause"])
    for cause, count in log_dir.causes.items():
        exits.add_metric([cause], float(count))
    families.append(exits)
    return families
