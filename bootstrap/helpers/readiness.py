"""The readiness checker: a process forked from PID 1 that runs the checks and keeps the run dir's
`status.json` and `ready` marker true. This module holds the checks, the log following and the
checker's loop; the loop also keeps `checkstats` (checks.json) and the JVM hint (`apptree`).

Why a separate process: the checks need requests and watchdog, which PID 1 must never
import (memory and start-up budget), and a check that hangs or crashes must never touch the
app. PID 1 never imports this module; it is imported in the forked child. requests and watchdog
are imported only when an HTTP or log check is set; the JVM scan reads /proc (no psutil). No
metrics code: prometheus_client is the HTTP helper's. The log check's origin (inode and size of
the ready log before the app started) is taken by PID 1 (`supervisor.log_origin`) and handed in.

The life of the checker:

- `starting` until every configured check passes (all must), then `ready`. Before the first
  ready, TCP/HTTP/command checks run every STARTUP_INTERVAL and the log check reacts to inotify
  events, so a readiness change is seen well within the 100 ms budget (docs/contract.md,
  "Budgets").
- Past the startup deadline (`timeout` seconds from `started_at`) without ever being ready, the
  state is `failed`. The checker keeps checking every `period` (1 s when period is 0), so an app
  that is merely slow still becomes ready: deciding to restart the container is the kubelet's,
  through the liveness probe (`failed` closes the live port, see probe_ports.py) or the startup
  probe of `bootstrap probe --startup`.
- With the probe ports set, a thread of the checker answers the kubelet's tcpSocket probes
  (probe_ports.py).
- After ready, with `period` > 0, the checks run every `period` seconds; a failure flips the state
  to `not_ready` (checks then back off from STARTUP_INTERVAL to `period`) and a pass flips it back.
  A log line, once matched, stays matched. With `period` 0 nothing is re-checked after ready.
- status.json is rewritten only when the state or its detail changes.

The supervisor restarts a checker whose heartbeat stops. A heartbeat thread writes one byte
every HEARTBEAT_INTERVAL as long as the main loop made progress within STALL_LIMIT, which is
longer than any single check may take; so a slow check is tolerated and a hung one is replaced.
The checker never signals the app: if the app is gone, it carries on until the supervisor ends it.
"""
from __future__ import annotations

import math
import os
import re
import select
import signal
import socket
import stat
import threading
import time
from collections import deque

from bootstrap import log, rundir
from bootstrap.frozen import frozen
from bootstrap.helpers.apptree import JvmHint, proc_stat
from bootstrap.helpers.checkstats import CheckStats
from bootstrap.pid1 import child, users
from bootstrap.procs import CATCHABLE

TYPE_CHECKING = False  # typing is for the type checker only; the checker's memory is in the budget
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, NoReturn

    from bootstrap.pid1.users import User
    from bootstrap.settings.table import ReadyChecks, Settings

STARTUP_INTERVAL = 0.025  # re-check period before the first ready: cheap, and keeps latency low
FAILED_INTERVAL = 1.0  # re-check period after `failed` when `period` is 0
SAFETY_INTERVAL = 1.0  # log re-read even without an inotify event (missed or delayed events)
MAX_WAIT = 0.5  # the main loop wakes at least this often, to prove progress to the heartbeat
HEARTBEAT_INTERVAL = 0.25
STALL_LIMIT = 20.0  # no main-loop progress for this long: stop the heartbeat, get replaced
TCP_TIMEOUT = 1.0
HTTP_TIMEOUT = 2.0  # connect and read, each
CMD_TIMEOUT = 10.0
READ_CHUNK = 1 << 16
MAX_LINE = 1 << 20  # a "line" with no newline this long is judged as is, so memory stays bounded
CMD_OUTPUT_TAIL = 4096
ADDRESS_RE = re.compile(r" at 0x[0-9a-fA-F]+")


@frozen
class Outcome:
    ok: bool
    detail: str


@frozen
class Probe:
    """A polled check: `label` names it in status details, `run` must not raise (see `safely`)."""

    label: str
    run: Callable[[], Outcome]
    kind: str  # tcp, http, cmd or running: the `check` label of the metrics


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


def safely(check: Callable[[], Outcome]) -> Outcome:
    try:
        return check()
    except Exception as exc:  # a check's fault is a failing check, never a dead checker
        return Outcome(False, f"check error: {describe(exc)}")


# --- polled checks ---------------------------------------------------------------------------


def check_tcp(host: str, port: int, timeout: float = TCP_TIMEOUT) -> Outcome:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return Outcome(False, describe(exc))
    return Outcome(True, "accepts connections")


def check_http(url: str, timeout: float = HTTP_TIMEOUT) -> Outcome:
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
            return Outcome(False, describe(exc))
        response.close()
    answer = f"HTTP {response.status_code}"
    return Outcome(200 <= response.status_code < 400, answer)


def check_cmd(argv: tuple[str, ...], timeout: float = CMD_TIMEOUT, user: User | None = None) -> Outcome:
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
        return Outcome(False, f"cannot run {argv[0]}: {describe(exc)}")
    finally:
        os.close(write_end)
    try:
        code, output = _wait_child(pid, timeout, read_end)
    finally:
        os.close(read_end)
    if code is None:
        return Outcome(False, f"timed out after {timeout:g}s")
    last = next((line for line in reversed(output.decode("utf-8", "replace").splitlines()) if line.strip()), "")
    text = f"exit {code}" if code >= 0 else f"killed by signal {-code}"
    return Outcome(code == 0, f"{text}: {last.strip()[:200]}" if last else text)


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


def app_running(pid: int) -> Outcome:
    """The no-checks case: ready as soon as the app's process exists and is not a zombie."""
    stat = proc_stat(pid)
    running = stat is not None and stat[1] not in ("Z", "X")
    return Outcome(running, "running" if running else "not running")


def probes(ready: ReadyChecks, app_pid: int, user: User | None = None) -> list[Probe]:
    """The polled checks (the log check is event-driven, see LogFollower and DirWatch)."""
    found: list[Probe] = []
    if ready.tcp:
        host, port = ready.tcp
        found.append(Probe(f"tcp {host}:{port}", lambda: check_tcp(host, port), "tcp"))
    if ready.http:
        import requests  # noqa: F401 - imported now, so the first check's duration measures the check

        url = ready.http
        found.append(Probe(f"http {url}", lambda: check_http(url), "http"))
    if ready.cmd:
        argv = ready.cmd
        found.append(Probe(f"cmd {' '.join(argv)}", lambda: check_cmd(argv, user=user), "cmd"))
    if not ready.any:
        found.append(Probe(f"app pid {app_pid}", lambda: app_running(app_pid), "running"))
    return found


# --- the log check ---------------------------------------------------------------------------


class LogFollower:
    """Follows one log file like `tail -F` until a complete line matches the pattern.

    - Lines that were in the file when bootstrap started (`origin`: inode and size, taken by
      PID 1 before the app was spawned) do not count, so a match left by a previous container
      cannot make this one ready.
    - A file created later, or a new file at the path (rotation: another inode), is read from its
      beginning, after the rest of the old one. A file that shrank (copytruncate) is read again
      from the start.
    - Limit: a truncation followed by more writes than the old size, all between two reads,
      looks like plain growth; the checker reads within milliseconds of each event, so this needs
      an app that truncates and rewrites its log in one burst.
    """

    def __init__(self, path: str, pattern: str, origin: tuple[int, int] | None, matched: bool = False) -> None:
        self.path = path
        self.pattern = pattern
        self.regex = re.compile(pattern)
        self.origin = origin
        self.matched = matched
        self.fd = -1
        self.ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self.offset = 0
        self.partial = b""
        self.first_look = True  # `origin` applies only to the file found at the very first look

    def poll(self) -> Outcome:
        """Reads what was written since the last call."""
        if not self.matched:
            if self.fd >= 0:
                self._read()  # finish the open file first: lines written just before a rotation count
            problem = None if self.matched else self._follow_path()
            if problem:
                return Outcome(False, problem)
        if self.matched:
            self.close()
            return Outcome(True, f"a line matched {self.pattern!r}")
        return Outcome(False, f"no line matching {self.pattern!r} yet")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _follow_path(self) -> str | None:
        """Switches to the file now at the path if it is not the open one; returns a problem or None."""
        first, self.first_look = self.first_look, False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "the file does not exist yet"
        except OSError as exc:
            return f"cannot read it: {describe(exc)}"
        # While our fd is open its inode cannot be reused, so the same (dev, ino) is the same file.
        if self.fd >= 0 and (st.st_dev, st.st_ino) == self.ident:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO must not hang us
        except FileNotFoundError:
            return "the file does not exist yet"
        except OSError as exc:
            return f"cannot read it: {describe(exc)}"
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            os.close(fd)
            return "not a regular file"
        self.close()
        self.fd, self.ident, self.partial = fd, (opened.st_dev, opened.st_ino), b""
        self.offset = 0  # a file created later or rotated in: every line in it is new
        if first and self.origin and self.origin[0] == opened.st_ino and opened.st_size >= self.origin[1]:
            self.offset = self.origin[1]  # the file bootstrap found: what it held then is stale
        self._read()
        return None

    def _read(self) -> None:
        if os.fstat(self.fd).st_size < self.offset:
            self.offset, self.partial = 0, b""  # truncated: everything in it now is new
        while not self.matched:
            chunk = os.pread(self.fd, READ_CHUNK, self.offset)
            if not chunk:
                return
            self.offset += len(chunk)
            self._scan(chunk)

    def _scan(self, chunk: bytes) -> None:
        *lines, self.partial = (self.partial + chunk).split(b"\n")  # the last piece has no newline yet
        if len(self.partial) > MAX_LINE:
            lines.append(self.partial)
            self.partial = b""
        self.matched = any(self.regex.search(line.rstrip(b"\r").decode("utf-8", "replace")) for line in lines)


class _Wake:
    """A watchdog event handler (watchdog only calls `dispatch`, so no import of its base class is
    needed here) that wakes the main loop for events about `name`, or for any event when None."""

    def __init__(self, wake: Callable[[], None], name: str | None) -> None:
        self.wake, self.name = wake, name

    def dispatch(self, event: Any) -> None:
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if self.name is None or self.name in (os.path.basename(os.fsdecode(p)) for p in paths):
            self.wake()


class DirWatch:
    """Wakes the checker on inotify events for the log file.

    Watches the file's directory (symlinks resolved, since inotify on a link path sees nothing of
    the files behind it); while that directory does not exist, its nearest existing ancestor, and
    `update` moves the watch down as directories appear. Non-recursive: the cost stays one watch.
    Note: watchdog holds back events for up to 0.5 s after a rename out of the directory, so right
    after a rotation the SAFETY_INTERVAL re-read may be what notices a match.
    """

    def __init__(self, path: str, wake: Callable[[], None]) -> None:
        self.path, self.wake = path, wake
        self.observer: Any = None
        self.watch: Any = None
        self.key: tuple[str, str | None, int] | None = None

    @property
    def active(self) -> bool:
        return self.observer is not None

    def start(self) -> None:
        try:
            import logging

            from watchdog.observers import Observer

            # watchdog reports its own shutdown races through `logging`; ours is bootstrap.log, and
            # failures that matter reach us as exceptions from schedule().
            logging.getLogger("watchdog").addHandler(logging.NullHandler())
            logging.getLogger("watchdog").propagate = False
            self.observer = Observer()
            self.observer.start()
        except (ImportError, OSError, RuntimeError) as exc:
            self._give_up(exc)
            return
        self.update()

    def update(self) -> None:
        """Re-aims the watch if the directory to watch has changed (appeared, replaced, relinked)."""
        if self.observer is None:
            return
        key = self._target()
        if key == self.key:
            return
        try:
            if self.watch is not None:
                self.observer.unschedule(self.watch)
                self.watch = None
            self.watch = self.observer.schedule(_Wake(self.wake, key[1]), key[0], recursive=False)
        except (OSError, KeyError, RuntimeError) as exc:
            self._give_up(exc)
            return
        self.key = key
        log.debug(f"readiness: watching {key[0]} for {self.path}")

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()  # its threads are daemons: no join, the loop must not wait
            self.observer = None

    def _target(self) -> tuple[str, str | None, int]:
        """(directory, file name to filter on or None for any event, the directory's inode)."""
        real = os.path.realpath(self.path)
        directory: str = os.path.dirname(real)
        name: str | None = os.path.basename(real)
        while True:
            try:
                return directory, name, os.stat(directory).st_ino
            except OSError:
                parent = os.path.dirname(directory)
                if parent == directory:
                    raise
                directory, name = parent, None  # an ancestor: any event may be the directory appearing

    def _give_up(self, exc: BaseException) -> None:
        log.warning(f"readiness: cannot watch {self.path} with inotify ({describe(exc)}); "
                    f"polling it every {STARTUP_INTERVAL * 1000:g} ms instead "
                    "(raise fs.inotify.max_user_watches/max_user_instances if that is the cause)")
        self.stop()


class LogCheck:
    """LogFollower plus the inotify watch that tells it when to read."""

    def __init__(self, path: str, pattern: str, origin: tuple[int, int] | None, matched: bool) -> None:
        self.label = f"log {path}"
        self.follower = LogFollower(path, pattern, origin, matched)
        self.watch: DirWatch | None = None

    @property
    def matched(self) -> bool:
        return self.follower.matched

    @property
    def event_driven(self) -> bool:
        return self.watch is not None and self.watch.active

    def start(self, wake: Callable[[], None]) -> None:
        if not self.matched:
            self.watch = DirWatch(self.follower.path, wake)
            self.watch.start()

    def poll(self) -> Outcome:
        if self.watch is not None:
            self.watch.update()  # before reading: whatever is written after this sends an event
        return self.follower.poll()

    def release(self) -> None:
        """After a match (which is forever): frees the inotify watch and its threads."""
        if self.matched and self.watch is not None:
            self.watch.stop()
            self.watch = None


# --- the checker process ---------------------------------------------------------------------


def checker_main(settings: Settings, app_pid: int, started_at: float, origin: tuple[int, int] | None,
                 heartbeat_fd: int) -> NoReturn:
    """Runs in a process forked from PID 1 (all catchable signals are blocked, inherited; the
    supervisor stops it with SIGKILL). Never returns: ends with os._exit."""
    try:
        Checker(settings, app_pid, heartbeat_fd, started_at, origin).run()
    except Exception as exc:  # the supervisor restarts us; say why we went
        log.error(f"readiness checker crashed: {describe(exc)}")
    finally:
        os._exit(70)


class Checker:
    """The main loop's state: last outcomes, when to check next, what was last written."""

    def __init__(self, settings: Settings, app_pid: int, heartbeat_fd: int, started_at: float,
                 origin: tuple[int, int] | None) -> None:
        self.settings = settings
        self.run_dir, self.ready, self.app_pid = settings.run_dir, settings.ready, app_pid
        self.heartbeat_fd = heartbeat_fd
        self.supervisor_pid = os.getppid()
        # started_at is wall-clock (time.time() in PID 1); the loop runs on the monotonic clock.
        self.deadline = time.monotonic() + (started_at + self.ready.timeout - time.time())
        previous = rundir.read(self.run_dir) or {}
        mine = previous.get("pid") == app_pid  # a status left for another app instance says nothing
        # Restarted after the app was ready: the log line was seen (and may be long rotated away).
        self.ever_ready = mine and bool(previous.get("ready_at"))
        self.written = (previous.get("state"), previous.get("detail")) if mine else None
        self.probes = probes(self.ready, app_pid, users.resolve(settings.user) if settings.user else None)
        self.log_check: LogCheck | None = None
        if self.ready.log and self.ready.pattern:
            self.log_check = LogCheck(self.ready.log, self.ready.pattern, origin, matched=self.ever_ready)
        self.results: dict[str, Outcome] = {}
        self.due = 0.0  # when the polled checks run next (monotonic)
        if self.ever_ready and self.ready.period == 0:
            # Restarted after ready with "check only at startup": startup is over, check nothing.
            self.results = {p.label: Outcome(True, "passed before a checker restart") for p in self.probes}
            self.due = math.inf
        self.fail_streak = 0
        self.jvm_hint = JvmHint(app_pid, done=self.ever_ready)  # a restart does not repeat the hint
        self.wake = threading.Event()
        self.progress_at = time.monotonic()
        self.write_failed = False
        self.stats = CheckStats(self.run_dir, app_pid, started_at)  # checks.json, for /metrics

    def run(self) -> NoReturn:
        threading.Thread(target=self.heartbeat, name="heartbeat", daemon=True).start()
        if self.settings.live_port or self.settings.ready_port:
            self.serve_probe_ports()
        if self.log_check is not None:
            self.log_check.start(self.wake.set)
        while True:
            self.progress_at = time.monotonic()
            self.step()
            self.sleep()

    def serve_probe_ports(self) -> None:
        """The kubelet's tcpSocket probes, answered by a thread of this process (probe_ports.py):
        every status write pokes it through a pipe. If the thread fails, the whole checker goes,
        so PID 1 restarts both together instead of leaving listeners nobody accepts on."""
        from bootstrap.helpers import probe_ports

        notify_r, notify_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        rundir.notify_changes_to(notify_w)
        ports = probe_ports.ProbePorts(self.settings, self.app_pid, notify_r)

        def serve() -> None:
            try:
                ports.run()
            except Exception as exc:
                log.error(f"probe ports failed: {describe(exc)}; restarting the readiness checker")
            os._exit(70)

        threading.Thread(target=serve, name="probe-ports", daemon=True).start()

    def heartbeat(self) -> None:
        while True:
            if time.monotonic() - self.progress_at < STALL_LIMIT:
                try:
                    os.write(self.heartbeat_fd, b".")
                except OSError:
                    pass  # pipe full (the supervisor reads later) or closed (it is about to kill us)
            time.sleep(HEARTBEAT_INTERVAL)

    def step(self) -> None:
        polled = time.monotonic() >= self.due
        if polled:
            for probe in self.probes:
                self.results[probe.label] = self.timed(probe.kind, probe.run)
        if self.log_check is not None:
            self.results[self.log_check.label] = self.timed("log", self.log_check.poll)
        state, detail = self.judge()
        if polled:
            self.due = time.monotonic() + self.interval(state)
        self.publish(state, detail)
        self.stats.save(time.monotonic())
        if self.log_check is not None:
            self.log_check.release()  # after the write: stopping watchdog's threads takes a moment
        self.jvm_hint.poll(app_ready=self.ever_ready)

    def timed(self, kind: str, check: Callable[[], Outcome]) -> Outcome:
        began = time.monotonic()
        outcome = safely(check)
        self.stats.observe(kind, time.monotonic() - began, outcome.ok)
        return outcome

    def judge(self) -> tuple[str, str]:
        failing = "; ".join(f"{label}: {o.detail}" for label, o in self.results.items() if not o.ok)
        if not failing:
            self.ever_ready, self.fail_streak = True, 0
            return "ready", "checks passed: " + ", ".join(self.results)
        if self.ever_ready:
            return "not_ready", failing
        if time.monotonic() >= self.deadline:
            return "failed", f"not ready within {self.ready.timeout:g}s: {failing}"
        return "starting", f"waiting for {failing}"

    def interval(self, state: str) -> float:
        period = self.ready.period
        if state == "ready":
            return period if period > 0 else math.inf
        slow = period if period > 0 else FAILED_INTERVAL
        if state == "not_ready":  # back off from fast to `period`: a long outage must not cost CPU
            self.fail_streak += 1
            return min(slow, STARTUP_INTERVAL * float(2 ** min(self.fail_streak, 20)))
        if state == "failed":
            return slow
        return STARTUP_INTERVAL

    def sleep(self) -> None:
        now = time.monotonic()
        timeout = min(self.due - now, MAX_WAIT)
        if not self.ever_ready and now < self.deadline:
            timeout = min(timeout, self.deadline - now)  # so `failed` is written on time
        if self.log_check is not None and not self.log_check.matched:
            timeout = min(timeout, SAFETY_INTERVAL if self.log_check.event_driven else STARTUP_INTERVAL)
        self.wake.wait(max(0.0, timeout))
        self.wake.clear()  # before step() reads: an event after this sets it again

    def publish(self, state: str, detail: str) -> None:
        if (state, detail) == self.written:
            return
        try:
            rundir.write(self.run_dir, state, pid=self.app_pid, supervisor_pid=self.supervisor_pid, detail=detail)
        except OSError as exc:
            if not self.write_failed:  # say it once; the next loop retries
                log.warning(f"readiness: cannot write {self.run_dir}/status.json: {describe(exc)}")
            self.write_failed = True
            return
        self.write_failed = False
        if self.written is None or state != self.written[0]:
            self.stats.entered(state, time.time())
            message = {"ready": "ready", "not_ready": "not ready", "failed": "readiness failed"}.get(state)
            if message:
                log.info(f"{message}: {detail}")
        self.written = (state, detail)
