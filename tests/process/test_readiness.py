"""The readiness checker as a real process: forked from the test like PID 1 forks it, with every
signal blocked, a real app pid (a `sleep`), a heartbeat pipe and a run dir in tmp_path."""
from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests  # noqa: F401 - imported before any fork, so the checker never imports after one
import watchdog.observers  # noqa: F401 - same

from bootstrap import rundir
from bootstrap.helpers import readiness
from bootstrap.pid1.supervisor import log_origin
from bootstrap.procs import CATCHABLE
from bootstrap.settings.table import ReadyChecks, Settings
from tests.support.net import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.process

STARTED = b"INFO Server startup in 812 ms\n"
PATTERN = r"Server startup in \d+ ms"


def make_settings(root: Path, ready: ReadyChecks) -> Settings:
    home = root / "app"
    return Settings(app_name="demo", app_env="qa", env="qa", app_home=str(home),
                    conf_source=str(home / "conf.d"), conf_target=str(home / "conf"),
                    log_root=str(root / "logs"), log_dir="{app}", log_link=str(home / "logs"),
                    run_dir=str(root / "run"), ready=ready)


class CheckerProc:
    """A forked checker: its pid, its heartbeat pipe, its stderr, and the run dir it writes."""

    def __init__(self, pid: int, beat_fd: int, stderr: Path, run_dir: Path) -> None:
        self.pid, self.beat_fd, self.stderr, self.run_dir = pid, beat_fd, stderr, run_dir
        self.beats = 0

    def status(self) -> dict[str, Any]:
        return rundir.read(str(self.run_dir)) or {}

    def state(self, wanted: str) -> dict[str, Any] | None:
        current = self.status()
        return current if current.get("state") == wanted else None

    def ready_file(self) -> bool:
        return (self.run_dir / rundir.READY_FILE).exists()

    def count_beats(self) -> int:
        try:
            self.beats += len(os.read(self.beat_fd, 4096))
        except BlockingIOError:
            pass
        return self.beats

    def alive(self) -> bool:
        return os.waitpid(self.pid, os.WNOHANG) == (0, 0)

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.beat_fd)


@pytest.fixture
def app() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)  # pgid = pid, like the real app
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def checker(tmp_path: Path, app: subprocess.Popen[bytes]) -> Iterator[Callable[..., CheckerProc]]:
    """checker(ready, origin=None, started_at=now, app_pid=app.pid) -> a running CheckerProc."""
    started: list[CheckerProc] = []
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def start(ready: ReadyChecks, origin: tuple[int, int] | None = None, started_at: float | None = None,
              app_pid: int | None = None) -> CheckerProc:
        settings = make_settings(tmp_path, ready)
        pid_of_app = app.pid if app_pid is None else app_pid
        stderr = tmp_path / f"checker{len(started)}.err"
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        err_fd = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        pid = os.fork()
        if pid == 0:  # the child: as PID 1 does it, every catchable signal blocked first
            try:
                os.close(read_end)
                os.dup2(err_fd, 2)
                signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
                readiness.checker_main(settings, pid_of_app, started_at or time.time(), origin, write_end)
            finally:
                os._exit(71)
        os.close(write_end)
        os.close(err_fd)
        proc = CheckerProc(pid, read_end, stderr, run_dir)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


class Health:
    """An HTTP server whose answer the test sets; counts requests."""

    def __init__(self) -> None:
        self.code = 503
        self.requests = 0
        health = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                health.requests += 1
                self.send_response(health.code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def health() -> Iterator[Health]:
    server = Health()
    yield server
    server.close()


def test_tcp_starting_then_ready(checker: Callable[..., CheckerProc], app: subprocess.Popen[bytes]) -> None:
    port = free_port()
    proc = checker(ReadyChecks(tcp=("127.0.0.1", port), period=0.2))
    starting = wait_until(lambda: proc.state("starting"))
    assert starting["detail"] == f"waiting for tcp 127.0.0.1:{port}: connection refused"
    assert not proc.ready_file() and starting["ready_at"] is None
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        ready = wait_until(lambda: proc.state("ready"))
        wait_until(proc.ready_file)  # created just after status.json says ready
    assert ready["pid"] == app.pid
    assert ready["supervisor_pid"] == os.getpid()  # the checker's parent: PID 1 in real life
    assert ready["ready_at"] and ready["detail"] == f"checks passed: tcp 127.0.0.1:{port}"


def test_heartbeats_arrive_and_no_checks_means_ready_once_running(checker: Callable[..., CheckerProc],
                                                                  app: subprocess.Popen[bytes]) -> None:
    proc = checker(ReadyChecks())
    ready = wait_until(lambda: proc.state("ready"))
    assert ready["detail"] == f"checks passed: app pid {app.pid}"
    wait_until(lambda: proc.count_beats() >= 4, 5)


def test_deadline_then_failed_then_late_ready(checker: Callable[..., CheckerProc]) -> None:
    port = free_port()
    proc = checker(ReadyChecks(tcp=("127.0.0.1", port), timeout=0.3, period=0.1))
    failed = wait_until(lambda: proc.state("failed"))
    assert failed["detail"] == f"not ready within 0.3s: tcp 127.0.0.1:{port}: connection refused"
    assert failed["ready_at"] is None and not proc.ready_file()
    with socket.socket() as listener:  # a slow app still becomes ready: restarts are the kubelet's call
        listener.bind(("127.0.0.1", port))
        listener.listen()
        wait_until(lambda: proc.state("ready"))
        wait_until(proc.ready_file)  # created just after status.json says ready


def test_deadline_counts_from_bootstrap_start(checker: Callable[..., CheckerProc]) -> None:
    proc = checker(ReadyChecks(tcp=("127.0.0.1", free_port()), timeout=60), started_at=time.time() - 61)
    wait_until(lambda: proc.state("failed"))


def test_flapping_http(checker: Callable[..., CheckerProc], health: Health) -> None:
    proc = checker(ReadyChecks(http=health.url, period=0.1))
    starting = wait_until(lambda: proc.state("starting"))
    assert starting["detail"] == f"waiting for http {health.url}: HTTP 503"
    health.code = 200
    first = wait_until(lambda: proc.state("ready"))
    wait_until(proc.ready_file)
    health.code = 500
    down = wait_until(lambda: proc.state("not_ready"))
    assert down["detail"] == f"http {health.url}: HTTP 500"
    assert not proc.ready_file()
    assert down["ready_at"] == first["ready_at"]  # startup probe: it has been ready once
    health.code = 204
    again = wait_until(lambda: proc.state("ready"))
    wait_until(proc.ready_file)
    assert again["ready_at"] == first["ready_at"]


def test_status_is_not_rewritten_while_nothing_changes(checker: Callable[..., CheckerProc], health: Health) -> None:
    health.code = 200
    proc = checker(ReadyChecks(http=health.url, period=0.02))
    wait_until(lambda: proc.state("ready"))
    path = proc.run_dir / rundir.STATUS_FILE
    before = path.stat().st_ino
    seen = health.requests
    wait_until(lambda: health.requests >= seen + 10)  # ten more rounds of checks
    assert path.stat().st_ino == before  # each write is a new inode (temp file + rename)


def test_period_zero_checks_only_at_startup(checker: Callable[..., CheckerProc], health: Health) -> None:
    health.code = 200
    proc = checker(ReadyChecks(http=health.url, period=0))
    wait_until(lambda: proc.state("ready"))
    seen = health.requests
    health.code = 500
    wait_until(lambda: proc.count_beats() >= 6, 5)  # alive for a while (>= 1.25 s) ...
    assert health.requests == seen and proc.state("ready")  # ... and never asked again


def test_log_stale_line_does_not_count(checker: Callable[..., CheckerProc], tmp_path: Path) -> None:
    log_file = tmp_path / "catalina.out"
    log_file.write_bytes(b"previous run\n" + STARTED)
    proc = checker(ReadyChecks(log=str(log_file), pattern=PATTERN, period=0.1),
                   origin=log_origin(str(log_file)))
    starting = wait_until(lambda: proc.state("starting"))  # the first round read the whole file
    assert starting["detail"] == f"waiting for log {log_file}: no line matching {PATTERN!r} yet"
    with open(log_file, "ab") as fh:
        fh.write(STARTED)
    ready = wait_until(lambda: proc.state("ready"))
    assert ready["detail"] == f"checks passed: log {log_file}"


def test_log_created_late_in_a_missing_directory(checker: Callable[..., CheckerProc], tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "tomcat" / "catalina.out"
    proc = checker(ReadyChecks(log=str(log_file), pattern=PATTERN, timeout=60))
    starting = wait_until(lambda: proc.state("starting"))
    assert starting["detail"] == f"waiting for log {log_file}: the file does not exist yet"
    log_file.parent.mkdir(parents=True)
    log_file.write_bytes(STARTED)
    wait_until(lambda: proc.state("ready"))


def test_log_and_tcp_must_both_pass(checker: Callable[..., CheckerProc], tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    port = free_port()
    proc = checker(ReadyChecks(tcp=("127.0.0.1", port), log=str(log_file), pattern=PATTERN))
    log_file.write_bytes(STARTED)
    both = f"tcp 127.0.0.1:{port}: connection refused"
    wait_until(lambda: (proc.state("starting") or {}).get("detail") == f"waiting for {both}")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        ready = wait_until(lambda: proc.state("ready"))
    assert ready["detail"] == f"checks passed: tcp 127.0.0.1:{port}, log {log_file}"


def test_restarted_checker_keeps_the_log_match(checker: Callable[..., CheckerProc], app: subprocess.Popen[bytes],
                                               tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_bytes(b"the match was rotated away long ago\n")
    run_dir = str(tmp_path / "run")
    rundir.write(run_dir, "starting", fresh=True, pid=app.pid, supervisor_pid=os.getpid())
    first = rundir.write(run_dir, "ready", detail="by the checker before")
    proc = checker(ReadyChecks(log=str(log_file), pattern=PATTERN, period=0.1),
                   origin=log_origin(str(log_file)))
    again = wait_until(lambda: (proc.state("ready") or {}).get("detail") == f"checks passed: log {log_file}")
    assert again and proc.status()["ready_at"] == first["ready_at"]
    wait_until(proc.ready_file)


def test_cmd_check(checker: Callable[..., CheckerProc], tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    proc = checker(ReadyChecks(cmd=("test", "-e", str(flag)), period=0.1))
    starting = wait_until(lambda: proc.state("starting"))
    assert starting["detail"] == f"waiting for cmd test -e {flag}: exit 1"
    flag.touch()
    wait_until(lambda: proc.state("ready"))
    flag.unlink()
    wait_until(lambda: proc.state("not_ready"))


def test_app_gone_checker_carries_on(checker: Callable[..., CheckerProc], app: subprocess.Popen[bytes]) -> None:
    proc = checker(ReadyChecks(period=0.1))
    wait_until(lambda: proc.state("ready"))
    app.kill()
    app.wait()
    gone = wait_until(lambda: proc.state("not_ready"))
    assert gone["detail"] == f"app pid {app.pid}: not running"
    beats = proc.count_beats()
    wait_until(lambda: proc.count_beats() > beats + 2, 5)
    assert proc.alive()


def test_broken_check_does_not_kill_the_checker(checker: Callable[..., CheckerProc], tmp_path: Path) -> None:
    # A log path inside a regular file: every stat fails with ENOTDIR; the checker reports it and lives.
    (tmp_path / "file").write_bytes(b"")
    proc = checker(ReadyChecks(log=str(tmp_path / "file" / "app.log"), pattern=PATTERN, period=0.1))
    starting = wait_until(lambda: proc.state("starting"))
    assert "not a directory" in starting["detail"]
    wait_until(lambda: proc.count_beats() >= 3, 5)
    assert proc.alive()


def test_jvm_in_the_app_group_gets_the_thread_dump_hint(checker: Callable[..., CheckerProc],
                                                        tmp_path: Path) -> None:
    java = tmp_path / "java"
    java.write_bytes(Path("/bin/sleep").read_bytes())
    java.chmod(0o755)
    jvm = subprocess.Popen([str(java), "300"], start_new_session=True)
    try:
        proc = checker(ReadyChecks(period=0.1), app_pid=jvm.pid)
        wait_until(lambda: "found a JVM" in proc.stderr.read_text(), 10)
        text = proc.stderr.read_text()
        assert f"(pid {jvm.pid})" in text and "BOOTSTRAP_THREAD_DUMP=1" in text
        assert text.count("found a JVM") == 1
    finally:
        jvm.kill()
        jvm.wait()


def test_reader_never_sees_partial_json_while_flapping(checker: Callable[..., CheckerProc], health: Health) -> None:
    health.code = 200
    proc = checker(ReadyChecks(http=health.url, period=0.01))
    wait_until(lambda: proc.state("ready"))
    stop = threading.Event()

    def flap() -> None:
        while not stop.wait(0.015):
            health.code = 500 if health.code == 200 else 200

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    path = proc.run_dir / rundir.STATUS_FILE
    ready_path = proc.run_dir / rundir.READY_FILE
    states: set[str] = set()
    try:
        for _ in range(5000):
            first = json.loads(path.read_bytes())  # raises on a partial or empty file
            ready_exists = ready_path.exists()
            second = json.loads(path.read_bytes())
            states.add(first["state"])
            if ready_exists and (first["state"], first["since"]) == (second["state"], second["since"]):
                assert first["state"] == "ready"  # `ready` exists only while the state is ready
    finally:
        stop.set()
        flapper.join()
    assert {"ready", "not_ready"} <= states


def test_restart_after_ready_with_period_zero_checks_nothing(checker: Callable[..., CheckerProc],
                                                             app: subprocess.Popen[bytes], tmp_path: Path) -> None:
    run_dir = str(tmp_path / "run")
    rundir.write(run_dir, "starting", fresh=True, pid=app.pid, supervisor_pid=os.getpid())
    rundir.write(run_dir, "ready", detail="by the checker before")
    port = free_port()  # nothing listens: a re-check would fail
    proc = checker(ReadyChecks(tcp=("127.0.0.1", port), period=0))
    wait_until(lambda: (proc.state("ready") or {}).get("detail") == f"checks passed: tcp 127.0.0.1:{port}")
    wait_until(lambda: proc.count_beats() >= 6, 5)  # a while later (>= 1.25 s) ...
    assert proc.state("ready")  # ... still ready, and not spinning:
    cpu = psutil.Process(proc.pid).cpu_times()
    assert cpu.user + cpu.system < 1.0


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever adopted it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_checker_ends_when_its_supervisor_is_gone(tmp_path: Path, app: subprocess.Popen[bytes]) -> None:
    """Outside a container nothing else ends a checker whose supervisor died: the loop sees its
    parent pid change and exits, instead of writing status.json for an agent that is gone."""
    settings = make_settings(tmp_path, ReadyChecks(period=0.1))
    (tmp_path / "run").mkdir()
    report_r, report_w = os.pipe()
    supervisor = os.fork()
    if supervisor == 0:  # a stand-in for PID 1: forks the checker, reports its pid, waits to be killed
        try:
            os.close(report_r)
            beat_r, beat_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:
                try:
                    os.dup2(os.open(tmp_path / "checker.err", os.O_WRONLY | os.O_CREAT, 0o644), 2)
                    signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
                    readiness.checker_main(settings, app.pid, time.time(), None, beat_w)
                finally:
                    os._exit(71)
            os.write(report_w, str(pid).encode())
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(report_w)
    checker_pid = int(os.read(report_r, 16))
    os.close(report_r)
    try:
        wait_until(lambda: (rundir.read(settings.run_dir) or {}).get("supervisor_pid") == supervisor)
        os.kill(supervisor, signal.SIGKILL)
        os.waitpid(supervisor, 0)
        wait_until(lambda: not running(checker_pid), timeout=3, interval=0.05)
    finally:
        if running(checker_pid):
            os.kill(checker_pid, signal.SIGKILL)
