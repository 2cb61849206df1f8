"""The readiness checks, called directly against real servers, files and commands on this machine."""
from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.helpers import checks, logfollow
from bootstrap.helpers.checks import check_http, check_tcp
from bootstrap.helpers.logfollow import DirWatch, LogCheck, LogFollower
from bootstrap.pid1.supervisor import log_origin
from bootstrap.settings.table import ReadyChecks
from tests.support.net import free_port

PATTERN = r"Server startup in \d+ ms"
STARTED = b"INFO Server startup in 812 ms\n"


# --- tcp -------------------------------------------------------------------------------------


def test_tcp_listener_passes() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        outcome = check_tcp("127.0.0.1", listener.getsockname()[1])
    assert outcome.ok, outcome


def test_tcp_closed_port_fails_with_reason() -> None:
    outcome = check_tcp("127.0.0.1", free_port())
    assert not outcome.ok
    assert outcome.detail == "connection refused"


# --- http ------------------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    """/code/N answers N; /redirect answers 302 to /code/500; /slow sleeps past the client's timeout."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path == "/slow":
            time.sleep(1.0)
        code, headers = 200, {}
        if self.path.startswith("/code/"):
            code = int(self.path.rsplit("/", 1)[1])
        elif self.path == "/redirect":
            code, headers = 302, {"Location": "/code/500"}
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet in test output
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("code", [200, 204, 301, 399])
def test_http_2xx_3xx_pass(http_base: str, code: int) -> None:
    assert check_http(f"{http_base}/code/{code}").ok


@pytest.mark.parametrize("code", [404, 500, 503])
def test_http_errors_fail_with_the_code(http_base: str, code: int) -> None:
    outcome = check_http(f"{http_base}/code/{code}")
    assert not outcome.ok
    assert outcome.detail == f"HTTP {code}"


def test_http_redirect_is_not_followed(http_base: str) -> None:
    outcome = check_http(f"{http_base}/redirect")  # it leads to a 500
    assert outcome.ok and outcome.detail == "HTTP 302"


def test_http_refused_is_short_and_stable() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    details = {check_http(url).detail for _ in range(3)}
    assert details == {"connection refused"}  # no object addresses: status.json is not rewritten


def test_http_timeout(http_base: str) -> None:
    outcome = check_http(f"{http_base}/slow", timeout=0.2)
    assert not outcome.ok
    assert outcome.detail == "timed out"


def test_http_ignores_proxy_environment(http_base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "")
    assert check_http(f"{http_base}/code/200").ok


# --- cmd -------------------------------------------------------------------------------------


# --- log: the follower (reading) -------------------------------------------------------------


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def test_origin_of_missing_and_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    assert log_origin(str(path)) is None
    path.write_bytes(b"old line\n")
    assert log_origin(str(path)) == (path.stat().st_ino, 9)


def test_stale_match_before_origin_does_not_count(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"previous container\n" + STARTED)
    follower = LogFollower(str(path), PATTERN, log_origin(str(path)))
    assert not follower.poll().ok
    append(path, b"INFO deploying\n")
    assert not follower.poll().ok
    append(path, STARTED)
    assert follower.poll().ok


def test_without_origin_the_whole_file_counts(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    follower = LogFollower(str(path), PATTERN, None)
    outcome = follower.poll()
    assert not outcome.ok and outcome.detail == "the file does not exist yet"
    path.write_bytes(b"boot\n" + STARTED)  # created after bootstrap started
    assert follower.poll().ok


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    follower = LogFollower(str(path), r"Server startup in \d+ ms$", log_origin(str(path)))
    append(path, b"INFO Server startup in 8")
    assert not follower.poll().ok  # "...in 8" is not the line yet: "8 ms" would not match `$` wrongly
    append(path, b"12 ms\r\n")
    assert follower.poll().ok


def test_match_stays_once_seen(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    follower = LogFollower(str(path), PATTERN, None)
    path.write_bytes(STARTED)
    assert follower.poll().ok
    path.unlink()
    assert follower.poll().ok


def test_truncation_restarts_from_the_beginning(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"x" * 500 + b"\n")
    follower = LogFollower(str(path), PATTERN, log_origin(str(path)))
    assert not follower.poll().ok
    with open(path, "r+b") as fh:  # copytruncate, then the app writes its first lines again
        fh.truncate(0)
    append(path, STARTED)
    assert follower.poll().ok


def test_truncation_seen_between_reads(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"x" * 50 + b"\n")
    follower = LogFollower(str(path), PATTERN, log_origin(str(path)))
    assert not follower.poll().ok
    with open(path, "r+b") as fh:
        fh.truncate(0)
    assert not follower.poll().ok
    append(path, b"y" * 100 + b"\n" + STARTED)  # grows past the old size again: still read from 0
    assert follower.poll().ok


def test_rotation_reads_new_file_from_start_and_old_file_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(STARTED)  # stale
    follower = LogFollower(str(path), PATTERN, log_origin(str(path)))
    assert not follower.poll().ok
    append(path, b"INFO last line before rotation\n")
    path.rename(tmp_path / "app.log.1")
    path.write_bytes(b"INFO first line after rotation\n")
    assert not follower.poll().ok
    path.rename(tmp_path / "app.log.2")
    path.write_bytes(STARTED)
    assert follower.poll().ok


def test_line_written_just_before_rotation_counts(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    follower = LogFollower(str(path), PATTERN, log_origin(str(path)))
    assert not follower.poll().ok
    append(path, STARTED)
    path.rename(tmp_path / "app.log.1")
    path.write_bytes(b"INFO new file\n")
    assert follower.poll().ok


def test_file_rotated_before_the_checker_started(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"old\n" * 100)
    origin = log_origin(str(path))
    path.rename(tmp_path / "app.log.1")
    path.write_bytes(STARTED)  # another inode: all of it is new
    assert LogFollower(str(path), PATTERN, origin).poll().ok


def test_endless_line_is_judged_and_memory_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    follower = LogFollower(str(path), "READY", log_origin(str(path)))
    append(path, b"z" * (logfollow.MAX_LINE + 10))
    assert not follower.poll().ok
    assert len(follower.partial) <= logfollow.MAX_LINE
    append(path, b"READY")
    append(path, b"z" * (logfollow.MAX_LINE + 10))
    assert follower.poll().ok


def test_non_utf8_bytes_do_not_break_matching(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    follower = LogFollower(str(path), PATTERN, None)
    path.write_bytes(b"\xff\xfe garbage\n\xc3" + STARTED)
    assert follower.poll().ok


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "app.log").mkdir()
    outcome = LogFollower(str(tmp_path / "app.log"), PATTERN, None).poll()
    assert not outcome.ok and outcome.detail == "not a regular file"


# --- log: the inotify watch -------------------------------------------------------------------


class Wakes:
    """Counts wake-ups from the watch, and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> None:
        self.event.set()

    def next(self, timeout: float = 5.0) -> None:
        assert self.event.wait(timeout), "no inotify wake-up"
        self.event.clear()


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


def stop_watch(check: LogCheck) -> None:
    if check.watch is not None:
        check.watch.stop()


def poll_on_wakes(check: LogCheck, wakes: Wakes, timeout: float = 10.0) -> None:
    """Polls only when the watch wakes us, as the checker does, until the check passes."""
    deadline = time.monotonic() + timeout
    while not check.poll().ok:
        assert time.monotonic() < deadline, "log check did not pass"
        wakes.next()


def test_watch_wakes_on_a_write(tmp_path: Path, wakes: Wakes) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    check = LogCheck(str(path), PATTERN, log_origin(str(path)), matched=False)
    check.start(wakes)
    try:
        assert check.event_driven
        assert not check.poll().ok
        wakes.event.clear()
        append(path, STARTED)
        poll_on_wakes(check, wakes)
        check.release()
        assert not check.event_driven  # matched: the watch is released
    finally:
        stop_watch(check)


def test_watch_ignores_other_files_in_the_directory(tmp_path: Path, wakes: Wakes) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    watch = DirWatch(str(path), wakes)
    watch.start()
    try:
        (tmp_path / "gc.log").write_bytes(b"noise\n")
        append(path, b"x\n")
        wakes.next()
        assert watch.key is not None and watch.key[1] == "app.log"
    finally:
        watch.stop()


def test_watch_follows_directories_created_later(tmp_path: Path, wakes: Wakes) -> None:
    path = tmp_path / "a" / "b" / "app.log"
    check = LogCheck(str(path), PATTERN, None, matched=False)
    check.start(wakes)
    try:
        assert not check.poll().ok
        assert check.watch is not None and check.watch.key is not None
        assert check.watch.key[0] == str(tmp_path.resolve())
        (tmp_path / "a").mkdir()
        wakes.next()
        assert not check.poll().ok
        (tmp_path / "a" / "b").mkdir()
        wakes.next()
        assert not check.poll().ok
        path.write_bytes(STARTED)
        poll_on_wakes(check, wakes)
    finally:
        stop_watch(check)


def test_watch_through_a_symlinked_directory(tmp_path: Path, wakes: Wakes) -> None:
    real = tmp_path / "data" / "logs"
    real.mkdir(parents=True)
    (tmp_path / "logs").symlink_to(real)  # like APP_HOME/logs -> LOG_ROOT/app/ip
    path = tmp_path / "logs" / "app.log"
    check = LogCheck(str(path), PATTERN, None, matched=False)
    check.start(wakes)
    try:
        assert not check.poll().ok
        (real / "app.log").write_bytes(STARTED)
        poll_on_wakes(check, wakes)
    finally:
        stop_watch(check)


def test_watch_sees_rotation(tmp_path: Path, wakes: Wakes) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(STARTED)  # stale
    check = LogCheck(str(path), PATTERN, log_origin(str(path)), matched=False)
    check.start(wakes)
    try:
        assert not check.poll().ok
        path.rename(tmp_path / "app.log.1")
        path.write_bytes(b"boot\n" + STARTED)
        poll_on_wakes(check, wakes)
    finally:
        stop_watch(check)


def test_already_matched_check_starts_no_watch(tmp_path: Path, wakes: Wakes) -> None:
    check = LogCheck(str(tmp_path / "never.log"), PATTERN, None, matched=True)
    check.start(wakes)
    assert check.watch is None
    assert check.poll().ok


# --- errors ----------------------------------------------------------------------------------


def test_a_raising_check_is_a_failing_check() -> None:
    def broken() -> checks.CheckResult:
        raise ValueError("bad thing at 0xdeadbeef")

    outcome = checks.safely(broken)
    assert not outcome.ok
    assert outcome.detail == "check error: ValueError: bad thing"


def test_describe_finds_the_os_error_inside_wrappers() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError(f"<Conn object at {hex(id(inner))}> failed") from inner
    except RuntimeError as outer:
        assert checks.describe(outer) == "connection refused"


def test_polled_checks_when_nothing_is_configured() -> None:
    found = checks.polled_checks(ReadyChecks(), os.getpid())
    assert [p.label for p in found] == [f"app pid {os.getpid()}"]
    assert found[0].run().ok
