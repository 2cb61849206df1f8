"""metrics.py with real files and processes: checks.json bookkeeping, the collector read through a
fresh CollectorRegistry, the log-dir walk, the record counts and the JVM version lookup."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bootstrap import rundir
from bootstrap.helpers import apptree, checkstats, logdir_stats, metrics
from tests.support.waiting import wait_until


def scrape(collector: metrics.Collector) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels: value}, through a registry of the test's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


@pytest.fixture
def group() -> Iterator[subprocess.Popen[bytes]]:
    """A process group of two: a leader and one child, both sleeping."""
    proc = subprocess.Popen(["/bin/sh", "-c", "sleep 60 & wait"], start_new_session=True)
    wait_until(lambda: sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(int(p.name)) == proc.pid) == 2)
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


# --- checks.json -----------------------------------------------------------------------------


def test_check_stats_count_and_bucket(tmp_path: Path) -> None:
    stats = checkstats.CheckStats(str(tmp_path), 42, started_at=1000.0)
    stats.observe("tcp", 0.0004, ok=False)
    stats.observe("tcp", 0.02, ok=True)
    stats.observe("tcp", 60.0, ok=True)
    stats.entered("ready", now=1002.5)
    stats.save(now=0.0)
    doc = json.loads((tmp_path / "checks.json").read_text())
    tcp = doc["checks"]["tcp"]
    assert (tcp["count"], tcp["failures"]) == (3, 1)
    assert tcp["buckets"][0] == 1 and tcp["buckets"][checkstats.BUCKETS.index(0.025)] == 1 and tcp["buckets"][-1] == 1
    assert doc["ready_transitions"] == 1 and doc["time_to_ready"] == 2.5


def test_check_stats_write_at_most_once_a_second_except_on_state_change(tmp_path: Path) -> None:
    stats = checkstats.CheckStats(str(tmp_path), 42, started_at=0.0)
    stats.save(now=100.0)
    path = tmp_path / "checks.json"
    first = path.stat().st_mtime_ns
    stats.observe("log", 0.001, ok=False)
    stats.save(now=100.5)  # too soon: not written
    assert json.loads(path.read_text())["checks"] == {} and path.stat().st_mtime_ns == first
    stats.save(now=101.1)
    assert json.loads(path.read_text())["checks"]["log"]["count"] == 1
    stats.entered("ready", now=5.0)
    stats.save(now=101.2)  # a state change is written at once
    assert json.loads(path.read_text())["ready_transitions"] == 1


def test_check_stats_survive_a_checker_restart_for_the_same_app_only(tmp_path: Path) -> None:
    stats = checkstats.CheckStats(str(tmp_path), 42, started_at=0.0)
    stats.observe("cmd", 0.3, ok=True)
    stats.entered("ready", now=3.0)
    stats.save(now=0.0)
    again = checkstats.CheckStats(str(tmp_path), 42, started_at=0.0)
    again.entered("not_ready", now=9.0)
    again.entered("ready", now=10.0)
    assert again.transitions == 2 and again.time_to_ready == 3.0 and again.checks["cmd"]["count"] == 1
    other = checkstats.CheckStats(str(tmp_path), 43, started_at=0.0)
    assert other.transitions == 0 and other.checks == {} and other.time_to_ready is None


# --- the collector ---------------------------------------------------------------------------


def make_run_dir(root: Path, app_pid: int) -> tuple[Path, Path]:
    run = root / "run"
    run.mkdir()
    logs = root / "logs" / "demo" / "10.0.0.7"
    (logs / "sub").mkdir(parents=True)
    (logs / "app.log").write_bytes(b"x" * 1000)
    (logs / "sub" / "gc.log").write_bytes(b"y" * 24)
    records = [{"event": "start", "pid": 1}, {"event": "exit", "cause": "stopped", "pid": 1},
               {"event": "start", "pid": 1}, {"event": "exit", "cause": "killed-after-timeout", "pid": 1},
               {"event": "exit", "cause": "no-such-cause", "pid": 1}, {"event": "start", "pid": 1}]
    (logs / ".bootstrap.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    link = root / "app" / "logs"
    link.parent.mkdir()
    link.symlink_to(logs)
    (run / "supervisor.json").write_text(json.dumps({
        "supervisor_pid": os.getpid(), "app_pid": app_pid, "started_at": "2024-05-01T10:00:00.250Z",
        "phases": {"config": 0.01, "logs": 0.02, "spawn": 0.5}, "signals_forwarded": {"SIGHUP": 2, "SIGUSR1": 1},
        "zombies_reaped": 3, "helper_restarts": {"readiness checker": 1, "http endpoint": 0},
        "helper_pids": {"readiness checker": 1, "http endpoint": 2}}))
    stats = checkstats.CheckStats(str(run), app_pid, started_at=0.0)
    stats.observe("http", 0.004, ok=False)
    stats.observe("http", 0.004, ok=True)
    stats.entered("ready", now=2.0)
    stats.save(now=0.0)
    rundir.write(str(run), "ready", fresh=True, pid=app_pid, supervisor_pid=os.getpid())
    return run, link


def test_collector_reads_every_file(tmp_path: Path, group: subprocess.Popen[bytes]) -> None:
    run, link = make_run_dir(tmp_path, group.pid)
    info = {"app": "demo", "env": "qa", "version": "0.1.0", "base_image": "registry.local/base:1"}
    got = scrape(metrics.Collector(str(run), group.pid, info, str(link)))
    assert got["bootstrap_phase_seconds"] == {(("phase", "config"),): 0.01, (("phase", "logs"),): 0.02,
                                              (("phase", "spawn"),): 0.5, (("phase", "ready"),): 1.5}
    assert got["bootstrap_ready"] == {(): 1.0}
    assert got["bootstrap_ready_transitions_total"] == {(): 1.0}
    assert got["bootstrap_time_to_ready_seconds"] == {(): 2.0}
    assert got["bootstrap_state"][(("state", "ready"),)] == 1.0 and sum(got["bootstrap_state"].values()) == 1.0
    assert got["bootstrap_start_time_seconds"] == {(): 1714557600.25}
    assert got["bootstrap_check_duration_seconds_count"] == {(("check", "http"),): 2.0}
    assert got["bootstrap_check_duration_seconds_bucket"][(("check", "http"), ("le", "0.005"))] == 2.0
    assert got["bootstrap_check_duration_seconds_bucket"][(("check", "http"), ("le", "0.0025"))] == 0.0
    assert got["bootstrap_check_failures_total"] == {(("check", "http"),): 1.0}
    # the common signals are there from the start, at 0, so rate() sees their first one
    assert got["bootstrap_signals_forwarded_total"] == {(("signal", "SIGHUP"),): 2.0, (("signal", "SIGUSR1"),): 1.0,
                                                        (("signal", "SIGQUIT"),): 0.0, (("signal", "SIGUSR2"),): 0.0,
                                                        (("signal", "SIGWINCH"),): 0.0}
    assert got["bootstrap_zombies_reaped_total"] == {(): 3.0}
    assert got["bootstrap_checker_restarts_total"] == {(): 1.0}
    assert got["bootstrap_app_processes"] == {(): 2.0}
    assert got["bootstrap_app_threads"] == {(): 2.0}
    assert got["bootstrap_app_resident_memory_bytes"][()] > 0
    assert got["bootstrap_app_open_fds"][()] >= 2
    assert got["bootstrap_info"] == {tuple(sorted(info.items())): 1.0}
    assert "bootstrap_jvm_info" not in got
    assert got["bootstrap_log_dir_bytes"] == {(): 1024.0 + (Path(link) / ".bootstrap.jsonl").stat().st_size}
    assert got["bootstrap_starts_total"] == {(): 3.0}
    assert got["bootstrap_exits_total"] == {(("cause", "exited"),): 0.0, (("cause", "signal"),): 0.0,
                                            (("cause", "stopped"),): 1.0, (("cause", "killed-after-timeout"),): 1.0}


def test_collector_with_an_empty_run_dir(tmp_path: Path) -> None:
    got = scrape(metrics.Collector(str(tmp_path), 2 ** 22 + 7, {"app": "a", "env": "e", "version": "v",
                                                               "base_image": ""}, str(tmp_path / "nolink")))
    assert got["bootstrap_ready"] == {(): 0.0}
    assert got["bootstrap_app_processes"] == {(): 0.0}
    assert "bootstrap_time_to_ready_seconds" not in got and "bootstrap_phase_seconds" not in got


def test_log_dir_is_walked_at_most_every_minute(tmp_path: Path) -> None:
    now = [1000.0]
    (tmp_path / "a.log").write_bytes(b"1" * 10)
    log_dir = logdir_stats.LogDirStats(str(tmp_path), lambda: now[0])
    log_dir.refresh()
    assert log_dir.bytes == 10
    (tmp_path / "b.log").write_bytes(b"2" * 5)
    now[0] += 59
    log_dir.refresh()
    assert log_dir.bytes == 10
    now[0] += 2
    log_dir.refresh()
    assert log_dir.bytes == 15


def test_dir_bytes_stops_at_the_cap_and_skips_symlinks(tmp_path: Path) -> None:
    for n in range(5):
        (tmp_path / f"{n}.log").write_bytes(b"x" * 100)
    (tmp_path / "link").symlink_to("/usr")
    assert logdir_stats.dir_bytes(str(tmp_path)) == (500, True)
    total, complete = logdir_stats.dir_bytes(str(tmp_path), cap=3)
    assert not complete and total <= 300


def test_jvm_version_from_environ_then_release_file(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("")
    (home / "release").write_text('IMPLEMENTOR="Debian"\nJAVA_VERSION="17.0.21.1"\n')
    (proc / "10").mkdir(parents=True)
    (proc / "10" / "environ").write_bytes(b"PATH=/bin\0JAVA_VERSION=jdk-21.0.5+11\0")
    (proc / "11").mkdir()
    (proc / "11" / "environ").write_bytes(b"PATH=/bin\0")
    (proc / "11" / "exe").symlink_to(home / "bin" / "java")
    (proc / "12").mkdir()
    assert apptree.jvm_version(10, str(proc)) == "jdk-21.0.5+11"
    assert apptree.jvm_version(11, str(proc)) == "17.0.21.1"
    assert apptree.jvm_version(12, str(proc)) == "unknown"


def test_parse_iso_reads_status_times() -> None:
    assert metrics.parse_iso(rundir.iso_time(1714557600.25)) == 1714557600.25
    assert metrics.parse_iso("garbage") is None and metrics.parse_iso(None) is None
