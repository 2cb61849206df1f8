"""The readiness checks the checker polls: TCP connect, HTTP GET, a command (run in a session of
its own and killed with everything it started at its timeout) and, with no check set, the app's
process being alive. Each returns a `CheckResult`; `safely` turns a raising check into a failing
one, and `describe` gives errors a short, stable text. The log check is event-driven: logfollow.py.

Imported by the readiness checker (a process forked from PID 1), never by PID 1. requests is
imported only when an HTTP check is set.
"""
from __future__ import annotations

import os
import re
import select
import signal
import socket
import time
from collections import deque

from bootstrap.frozen import frozen
from bootstrap.helpers.apptree import proc_stat
from bootstrap.helpers.checkstats import CMD_KIND, HTTP_KIND, RUNNING_KIND, TCP_KIND
from bootstrap.pid1 import child
from bootstrap.procs import CATCHABLE
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from bootstrap.pid1.users import User
    from bootstrap.settings.table import ReadyChecks

# Re-check period before the first ready, for the polled checks and a log inotify cannot watch:
# cheap, and keeps latency low.
STARTUP_INTERVAL = 0.025
TCP_TIMEOUT = 1.0
HTTP_TIMEOUT = 2.0  # connect and read, each
CMD_TIMEOUT = 10.0
CMD_OUTPUT_TAIL = 4096
ADDRESS_RE = re.compile(r" at 0x[0-9a-fA-F]+")


@frozen
class CheckResult:
    ok: bool
    detail: str


@frozen
class PolledCheck:
    """A check the checker runs on a schedule: `label` names it in status details, `run` must not
    raise (see `safely`)."""

    label: str
    run: Callable[[], CheckResult]
    kind: str  # one of checkstats.CHECK_KINDS: the `check` label of the metrics


# --- error text ------------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps (cause, context, urllib3's `reason`, exception args), breadth first."""
    queue: deque[BaseException] = deque([exc])
    seen: set[int] = set()
    while queue and len(seen) < 20:
        current = queue.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        queue.extend(e for e in nested if isinstance(e, BaseException))


def describe(exc: BaseException) -> str:
    """A short, stable reason. Stable matters: status.json is rewritten whenever the detail changes,
    and requests' messages embed object addresses that differ on every attempt."""
    for cause in _causes(exc):
        if isinstance(cause, (TimeoutError, socket.timeout)) or "Timeout" in type(cause).__name__:
            return "timed out"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return ADDRESS_RE.sub("", f"{type(exc).__name__}: {exc}")[:200]


def safely(check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except Exception as exc:  # a check's fault is a failing check, never a dead checker
        return CheckResult(False, f"check error: {describe(exc)}")


# --- polled checks ---------------------------------------------------------------------------


def check_tcp(host: str, port: int, timeout: float = TCP_TIMEOUT) -> CheckResult:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return CheckResult(False, describe(exc))
    return CheckResult(True, "accepts connections")


def check_http(url: str, timeout: float = HTTP_TIMEOUT) -> CheckResult:
    """2xx or 3xx is ready. Redirects are not followed, and like the kubelet's probe the
    certificate is not verified and no proxy from the environment is used."""
    import requests
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    with requests.Session() as session:
        session.trust_env = False  # HTTP_PROXY must not route a local health check elsewhere
        try:
            # stream: the status line is enough, a large body is never downloaded
            response = session.get(url, timeout=timeout, allow_redirects=False, verify=False, stream=True,
                                   headers={"Connection": "close", "User-Agent": "bootstrap-readiness"})
        except requests.RequestException as exc:
            return CheckResult(False, describe(exc))
        response.close()
    answer = f"HTTP {response.status_code}"
    return CheckResult(200 <= response.status_code < 400, answer)


def check_cmd(argv: tuple[str, ...], timeout: float = CMD_TIMEOUT, user: User | None = None) -> CheckResult:
    """Exit 0 is ready. No shell. The command gets an unblocked signal mask and default signal
    dispositions (the checker has every signal blocked, inherited from PID 1) and its own session,
    so a timeout can kill it together with anything it started. It runs as BOOTSTRAP_USER, like the app."""
    read_end, write_end = os.pipe()
    try:
        if user is not None:  # posix_spawn cannot switch ids
            pid = child.spawn_as(argv, user, write_end)
        else:
            pid = os.posix_spawnp(argv[0], list(argv), dict(os.environ), setsid=True, setsigmask=(),
                                  setsigdef=CATCHABLE,
                                  file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                                (os.POSIX_SPAWN_DUP2, write_end, 1),
                                                (os.POSIX_SPAWN_DUP2, write_end, 2)])
    except OSError as exc:
        os.close(read_end)
        return CheckResult(False, f"cannot run {argv[0]}: {describe(exc)}")
    finally:
        os.close(write_end)
    try:
        code, output = _wait_child(pid, timeout, read_end)
    finally:
        os.close(read_end)
    if code is None:
        return CheckResult(False, f"timed out after {timeout:g}s")
    last = next((line for line in reversed(output.decode("utf-8", "replace").splitlines()) if line.strip()), "")
    text = f"exit {code}" if code >= 0 else f"killed by signal {-code}"
    return CheckResult(code == 0, f"{text}: {last.strip()[:200]}" if last else text)


def _wait_child(pid: int, timeout: float, out_fd: int) -> tuple[int | None, bytes]:
    """Waits for pid (reading its output meanwhile, so a chatty command cannot block on a full
    pipe): its exit code and the tail of its output, or None after killing it at the timeout."""
    deadline = time.monotonic() + timeout
    tail = b""
    poller = select.poll()
    poller.register(out_fd, select.POLLIN)
    pidfd = _pidfd(pid)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    try:
        while True:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                os.set_blocking(out_fd, False)
                return os.waitstatus_to_exitcode(wait_status), (tail + _read_ready(out_fd))[-CMD_OUTPUT_TAIL:]
            left = deadline - time.monotonic()
            if left <= 0:
                _kill_group(pid)
                os.waitpid(pid, 0)
                return None, tail
            # Without a pidfd nothing wakes us on exit: fall back to short waits.
            wait = left if pidfd is not None else min(left, 0.005)
            for fd, _ in poller.poll(wait * 1000):
                if fd == out_fd:
                    chunk = os.read(out_fd, 65536)
                    if not chunk:
                        poller.unregister(out_fd)
                    tail = (tail + chunk)[-CMD_OUTPUT_TAIL:]
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # kernel < 5.3, or a seccomp profile that forbids it
        return None


def _read_ready(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data = (data + chunk)[-CMD_OUTPUT_TAIL:]


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def app_running(pid: int) -> CheckResult:
    """The no-checks case: ready as soon as the app's process exists and is not a zombie."""
    stat = proc_stat(pid)
    running = stat is not None and stat[1] not in ("Z", "X")
    return CheckResult(running, "running" if running else "not running")


def polled_checks(ready: ReadyChecks, app_pid: int, user: User | None = None) -> list[PolledCheck]:
    """The polled checks (the log check is event-driven: logfollow.LogCheck)."""
    found: list[PolledCheck] = []
    if ready.tcp:
        host, port = ready.tcp
        found.append(PolledCheck(f"tcp {host}:{port}", lambda: check_tcp(host, port), TCP_KIND))
    if ready.http:
        import requests  # noqa: F401 - imported now, so the first check's duration measures the check

        url = ready.http
        found.append(PolledCheck(f"http {url}", lambda: check_http(url), HTTP_KIND))
    if ready.cmd:
        argv = ready.cmd
        found.append(PolledCheck(f"cmd {' '.join(argv)}", lambda: check_cmd(argv, user=user), CMD_KIND))
    if not ready.any:
        found.append(PolledCheck(f"app pid {app_pid}", lambda: app_running(app_pid), RUNNING_KIND))
    return found
