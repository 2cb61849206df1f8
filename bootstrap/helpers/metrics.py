"""The agent's Prometheus metrics, served by the HTTP helper (`http_endpoint`): what the run dir's
files say, read at scrape time, plus the app's process group and log directory.

Three processes know things, and each writes its file in the run dir (`rundir`, atomically):

- PID 1: `supervisor.json` (phases, signals forwarded, zombies reaped, helper restarts);
- the readiness checker: `status.json`, and `checks.json` through `checkstats.CheckStats`;
- nobody else: the app's process tree (`apptree`), the log directory (`logdir_stats`) and the
  pod's network interfaces (`netdev`) are looked at directly.

`Collector` turns them into metric families for a `prometheus_client.CollectorRegistry` of its
own (never the global one). Only the HTTP helper imports this module, on the first scrape, so a
helper that serves only the probes never loads prometheus_client or psutil.
"""
from __future__ import annotations

import calendar
import threading
import time

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from bootstrap import __version__, rundir
from bootstrap.helpers import netdev
from bootstrap.helpers.apptree import AppTree, TreeSample, jvm_version
from bootstrap.helpers.checkstats import CHECK_KINDS
from bootstrap.helpers.logdir_stats import LOG_DIR_INTERVAL, LOG_DIR_MAX_ENTRIES, LogDirStats
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from bootstrap.settings.table import Settings

COMMON_SIGNALS = ("SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")


def registry_for(settings: Settings, app_pid: int) -> CollectorRegistry:
    """A registry of our own (never the global one) holding the Collector for this app."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector.for_settings(settings, app_pid))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format of everything in the registry."""
    return bytes(generate_latest(registry))


def parse_iso(text: Any) -> float | None:
    """rundir.iso_time's format back to a Unix time."""
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
        self.log_dir = LogDirStats(log_link, clock)
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
            supervisor = rundir.read_json(self.run_dir, rundir.SUPERVISOR_FILE) or {}
            state = rundir.read_json(self.run_dir, rundir.STATUS_FILE) or {}
            checks = rundir.read_json(self.run_dir, rundir.CHECKS_FILE) or {}
            ready = rundir.probe(self.run_dir, rundir.READY_PROBE)
            app_pid = supervisor.get("app_pid")
            if isinstance(app_pid, int) and app_pid > 0 and app_pid != self.app_pid:  # restarted in the pod
                self.app_pid, self.tree = app_pid, AppTree(app_pid)
            self.log_dir.refresh()
            tree = self.tree.sample()
            jvm = None
            if tree.jvm is not None:
                if tree.jvm not in self.jvm_versions:
                    self.jvm_versions = {tree.jvm: jvm_version(tree.jvm[0])}  # one JVM cached
                jvm = self.jvm_versions[tree.jvm]
            return (lifecycle_families(supervisor, state, checks, ready)
                    + check_families(checks) + process_families(supervisor, tree) + reload_families(supervisor)
                    + network_families(netdev.read()) + info_families(self.info, jvm, self.log_dir))


def _dict(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def lifecycle_families(supervisor: dict[str, Any], state: dict[str, Any], checks: dict[str, Any],
                       ready: bool) -> list[Any]:
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
    for name in rundir.STATES:
        one_hot.add_metric([name], 1.0 if state.get("state") == name else 0.0)
    families.append(one_hot)
    started = parse_iso(supervisor.get("started_at"))
    if started is not None:
        families.append(GaugeMetricFamily("bootstrap_start_time_seconds",
                                          "Unix time the agent spawned the app.", value=started))
    return families


def reload_families(supervisor: dict[str, Any]) -> list[Any]:
    """Config reloads (BOOTSTRAP_RELOAD) by action and result, and when a change was last applied."""
    reloads = CounterMetricFamily("bootstrap_config_reloads", "Config reloads, by action (restart, signal, http, "
                                  "exit) and result (ok, failed, check-failed, interrupted).",
                                  labels=["action", "result"])
    for key, count in sorted(_dict(supervisor, "config_reloads").items()):
        action, _, result = str(key).partition("/")
        if isinstance(count, (int, float)) and result:
            reloads.add_metric([action, result], float(count))
    families: list[Any] = [reloads]
    applied = parse_iso(supervisor.get("config_applied_at"))
    if applied is not None:
        families.append(GaugeMetricFamily("bootstrap_config_last_applied_time_seconds",
                                          "Unix time the last config change was applied by a reload.", value=applied))
    return families


def check_families(checks: dict[str, Any]) -> list[Any]:
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
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def process_families(supervisor: dict[str, Any], tree: TreeSample) -> list[Any]:
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


def network_families(interfaces: dict[str, tuple[int, int]]) -> list[Any]:
    received = CounterMetricFamily("bootstrap_network_receive_bytes",
                                   "Bytes the pod received, by interface (/proc/net/dev of its network namespace).",
                                   labels=["interface"])
    sent = CounterMetricFamily("bootstrap_network_transmit_bytes",
                               "Bytes the pod sent, by interface (/proc/net/dev of its network namespace).",
                               labels=["interface"])
    for name, (rx, tx) in sorted(interfaces.items()):
        received.add_metric([name], float(rx))
        sent.add_metric([name], float(tx))
    return [received, sent]


def info_families(info: dict[str, str], jvm: str | None, log_dir: LogDirStats) -> list[Any]:
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
