"""The readiness checker: a process forked from PID 1 that runs the checks and keeps the run dir's
`status.json` and `ready` marker true. This module is the checker's loop (heartbeat, judging,
publishing); the checks are in checks.py, the log check in logfollow.py, and the loop also keeps
`checkstats` (checks.json) and the JVM hint (`apptree`).

Why a separate process: the checks need requests and watchdog, which PID 1 must never
import (memory and start-up budget), and a check that hangs or crashes must never touch the
app. PID 1 never imports this module; it is imported in the forked child. requests and watchdog
are imported only when an HTTP or log check is set; the JVM scan reads /proc (no psutil). No
metrics code: prometheus_client is the HTTP helper's. The log check's origin (inode and size of
the ready log before the app started) is taken by PID 1 (`pid1.supervisor.log_origin`) and handed in.

The life of the checker:

- `starting` until every configured check passes (all must), then `ready`. Before the first
  ready, TCP/HTTP/command checks run every STARTUP_INTERVAL (checks.py) and the log check reacts
  to inotify events, so a readiness change is seen well within the 100 ms budget
  (docs/contract.md, "Budgets").
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
- While not ready, the current reason goes to the log 10, 30 and 60 s into the spell, then every
  5 minutes (waitlog.py); at the deadline, one `readiness failed` line.

The supervisor restarts a checker whose heartbeat stops. A heartbeat thread writes one byte
every HEARTBEAT_INTERVAL as long as the main loop made progress within STALL_LIMIT, which is
longer than any single check may take; so a slow check is tolerated and a hung one is replaced.
The checker never signals the app: if the app is gone, it carries on until the supervisor ends it.
If the supervisor is gone, the checker ends within a loop turn (MAX_WAIT).
"""
from __future__ import annotations

import math
import os
import threading
import time

from bootstrap import log, rundir
from bootstrap.helpers.apptree import JvmHint
from bootstrap.helpers.checks import STARTUP_INTERVAL, CheckResult, describe, polled_checks, safely
from bootstrap.helpers.checkstats import CheckStats
from bootstrap.helpers.logfollow import LogCheck
from bootstrap.helpers.waitlog import WaitLog
from bootstrap.pid1 import users
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from bootstrap.settings.table import Settings

FAILED_INTERVAL = 1.0  # re-check period after `failed` when `period` is 0
SAFETY_INTERVAL = 1.0  # log re-read even without an inotify event (missed or delayed events)
MAX_WAIT = 0.5  # the main loop wakes at least this often, to prove progress to the heartbeat
HEARTBEAT_INTERVAL = 0.25
STALL_LIMIT = 20.0  # no main-loop progress for this long: stop the heartbeat, get replaced


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
        self.polled = polled_checks(self.ready, app_pid, users.switch(settings.user))
        self.log_check: LogCheck | None = None
        if self.ready.log and self.ready.pattern:
            self.log_check = LogCheck(self.ready.log, self.ready.pattern, origin, matched=self.ever_ready)
        self.results: dict[str, CheckResult] = {}
        self.due = 0.0  # when the polled checks run next (monotonic)
        if self.ever_ready and self.ready.period == 0:
            # Restarted after ready with "check only at startup": startup is over, check nothing.
            self.results = {p.label: CheckResult(True, "passed before a checker restart") for p in self.polled}
            self.due = math.inf
        self.fail_streak = 0
        self.jvm_hint = JvmHint(app_pid, done=self.ever_ready)  # a restart does not repeat the hint
        self.wake = threading.Event()
        self.progress_at = time.monotonic()
        self.write_failed = False
        self.stats = CheckStats(self.run_dir, app_pid, started_at)  # checks.json, for /metrics
        # The reason in the log at growing intervals while not ready; the spell began with the app.
        self.waiting = WaitLog(None if self.ever_ready else time.monotonic() - (time.time() - started_at))

    def run(self) -> NoReturn:
        threading.Thread(target=self.heartbeat, name="heartbeat", daemon=True).start()
        if self.settings.live_port or self.settings.ready_port:
            self.serve_probe_ports()
        if self.log_check is not None:
            self.log_check.start(self.wake.set)
        while True:
            self.progress_at = time.monotonic()
            self.end_if_orphaned()
            self.step()
            self.sleep()

    def end_if_orphaned(self) -> None:
        """A checker whose supervisor is gone exits rather than write for an agent that no longer
        exists (the fallback to the kernel's parent-death signal, see pid1/forked.py)."""
        if os.getppid() != self.supervisor_pid:
            log.warning(f"readiness checker: its supervisor (pid {self.supervisor_pid}) is gone; exiting")
            os._exit(70)

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
            for check in self.polled:
                self.results[check.label] = self.timed(check.kind, check.run)
        if self.log_check is not None:
            self.results[self.log_check.label] = self.timed(self.log_check.kind, self.log_check.poll)
        state, detail = self.judge()
        if polled:
            self.due = time.monotonic() + self.interval(state)
        self.publish(state, detail)
        line = self.waiting.note(state, detail, time.monotonic())
        if line:
            log.info(line)
        self.stats.save(time.monotonic())
        if self.log_check is not None:
            self.log_check.release()  # after the write: stopping watchdog's threads takes a moment
        self.jvm_hint.poll(app_ready=self.ever_ready)

    def timed(self, kind: str, check: Callable[[], CheckResult]) -> CheckResult:
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
