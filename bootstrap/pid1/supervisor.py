"""The PID-1 loop: block signals, spawn the app, then { wait for a signal; reap; advance the stop;
watch the helpers } until the app is gone, and exit with its code.

There are no signal handlers: every catchable signal is blocked before any child or thread
exists and taken with sigtimedwait, so handling one is ordinary code in the loop.
"""
from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Mapping

from bootstrap import log, logdir, rundir
from bootstrap.pid1 import child, logdirs, loglock, reaper
from bootstrap.pid1.forked import ForkedHelper
from bootstrap.pid1.plan import SetupPlan
from bootstrap.pid1.readywatch import ReadyWatch
from bootstrap.pid1.sidewrite import Journal, SideWrite
from bootstrap.procs import CATCHABLE
from bootstrap.settings.table import ROW, Settings
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.pid1.reload import Reloader

STOP_TRIGGERS = frozenset({signal.SIGTERM, signal.SIGINT})
# Not forwarded: SIGCHLD (ours), faults that only mean something to the process that caused
# them, and terminal job-control input/output stops (tini's list).
NOT_FORWARDED = frozenset({signal.SIGCHLD, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
                           signal.SIGTRAP, signal.SIGSYS, signal.SIGABRT, signal.SIGTTIN, signal.SIGTTOU})
EXIT_GRACE = 2.0  # after the app exits on its own, the rest of its group gets this long (docs/contract.md)
MAX_WAKEUP = 1.0  # the loop wakes at least this often to watch the helpers' heartbeats


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def launch(settings: Settings, plan: SetupPlan, command: tuple[str, ...], environ: Mapping[str, str],
           phases: dict[str, float] | None = None) -> int:
    """Runs the app as a supervised child and returns the exit code bootstrap must exit with."""
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)  # before any child or thread
    if os.getpid() != 1:
        if reaper.become_subreaper():
            log.info("not PID 1: registered as child subreaper, so orphans of the app are reaped here")
        else:
            log.warning("not PID 1 and prctl(PR_SET_CHILD_SUBREAPER) failed (Linux >= 3.4 needed): "
                        "orphans of the app will not be reaped by bootstrap")
    started_at = time.time()
    origin = log_origin(settings.ready.log) if settings.ready.log else None
    rundir.check_run_dir(settings.run_dir)  # read-only: exit 78 before the app starts; clears an old marker
    began = time.monotonic()
    app = child.spawn(command, environ, old_mask, CATCHABLE, plan.user)
    phases = {**(phases or {}), "spawn": time.monotonic() - began}
    supervisor = Supervisor(settings, plan, app, started_at, origin, phases)
    # Records are written once the app runs: nothing but the spawn stands between setup and the app.
    # Not retried: the checker writes the next state (with the same pids) and retries on its own.
    supervisor.status_file.attempt(lambda: rundir.write(settings.run_dir, "starting", fresh=True,
                                                        supervisor_pid=os.getpid(), pid=app,
                                                        detail="waiting for readiness checks"))
    log.info(f"started {' '.join(command)} as pid {app} (env {settings.env}, logs in {plan.log_dir})")
    supervisor.journal.add(logdirs.record_line(settings, plan.ip, "start", app))
    if settings.reload != "off":  # loaded only then: the default's import cost stays as it is
        from bootstrap.pid1 import reload

        supervisor.reload = reload.Reloader(supervisor, lambda: child.spawn(command, environ, old_mask, CATCHABLE,
                                                                            plan.user))
    return supervisor.run()


CHECKER = "bootstrap.helpers.readiness:checker_main"
HTTP_ENDPOINT = "bootstrap.helpers.http_endpoint:serve_main"


class Supervisor:
    """The loop's state: the app, the stop in progress, the helpers and the counters."""

    def __init__(self, settings: Settings, plan: SetupPlan, app: int, started_at: float,
                 origin: tuple[int, int] | None, phases: dict[str, float]) -> None:
        self.settings, self.plan, self.app = settings, plan, app
        self.app_code: int | None = None  # set when the app is reaped
        self.stopping = False
        self.drain_until = self.kill_at = self.quit_at = 0.0
        self.stop_sent = self.quit_sent = self.killed = False

        # Helpers are named, not imported: their modules (and psutil, requests, watchdog,
        # prometheus-client) are loaded in the forked child only, never in PID 1.
        self.checker = ForkedHelper("readiness checker", CHECKER, (settings, app, started_at, origin),
                                    settings.checker_timeout)
        self.http = (ForkedHelper("http endpoint", HTTP_ENDPOINT, (settings, app), None)
                     if settings.http_port else None)
        self.counters = Counters(started_at, phases)
        self.ready_watch = ReadyWatch(settings.run_dir, settings.ready.timeout, settings.exit_on_failed)
        # A full or read-only disk costs these files, never the app: see bootstrap.pid1.sidewrite.
        self.status_file = SideWrite(f"{settings.run_dir}/{rundir.STATUS_FILE}")
        self.journal = Journal(lambda data: logdirs.append_lines(plan.log_dir, data),
                               f"the start/exit journal {plan.log_dir}/{logdir.RECORD_FILE}")
        self.reload: Reloader | None = None  # BOOTSTRAP_RELOAD (pid1/reload.py)

    def helpers(self) -> list[ForkedHelper]:
        return [h for h in (self.checker, self.http, *(self.reload.helpers() if self.reload else ())) if h is not None]

    def run(self) -> int:
        gc.freeze()  # the helpers' collections then leave the pages they share with PID 1 unwritten
        for helper in self.helpers():
            helper.start()
        while self.app_code is None:
            self.counters.save_if_changed(self.settings.run_dir, self.app, self.helpers())
            self.status_file.retry()
            self.journal.flush()
            loglock.keep_linked()  # an app that deleted the lock file must not make its dir look dead
            self.take_signal(self.next_wakeup())
            self.reap()
            self.stop_if_failed()
            self.advance_stop()
            for helper in self.helpers():
                helper.watch()
        return self.finish()

    # --- signals ---------------------------------------------------------------------------

    def next_wakeup(self) -> float:
        now = time.monotonic()
        deadlines = [now + MAX_WAKEUP]
        if self.stopping and not self.stop_sent:
            deadlines.append(self.drain_until)
        if self.stop_sent and not self.killed:
            deadlines.append(self.kill_at)
            if self.settings.thread_dump and not self.quit_sent:
                deadlines.append(self.quit_at)
        deadlines += [d for d in (h.next_deadline() for h in self.helpers()) if d is not None]
        watch = self.ready_watch.next_deadline()
        if watch is not None and not self.stopping:
            deadlines.append(watch)
        return max(0.0, min(deadlines) - now)

    def take_signal(self, timeout: float) -> None:
        info = signal.sigtimedwait(CATCHABLE, timeout)
        if info is None:
            return
        sig = info.si_signo
        if sig in STOP_TRIGGERS:
            self.begin_stop(sig)
        elif sig not in NOT_FORWARDED:
            self.to_group(sig)
            self.counters.forwarded(signal_name(sig))
            log.debug(f"forwarded {signal_name(sig)} to the app's process group {self.app}")

    def to_group(self, sig: int) -> None:
        try:
            os.killpg(self.app, sig)
        except ProcessLookupError:
            pass  # the group is already gone; the reap will notice

    # --- stop choreography -----------------------------------------------------------------

    def begin_stop(self, sig: int) -> None:
        if self.stopping and not (self.reload and self.reload.restarting()):  # a restart's stop becomes this one
            if not self.stop_sent:  # a second TERM/INT cuts the drain short
                log.info(f"second {signal_name(sig)}: ending the drain now")
                self.drain_until = time.monotonic()
            return
        self.start_stop(f"received {signal_name(sig)}")

    def stop_if_failed(self) -> None:
        """exit_on_failed: the state turned `failed`, and no kubelet will restart the container."""
        failure = "" if self.stopping or self.app_code is not None else self.ready_watch.failed_now()
        if failure:
            log.error(f"readiness failed: {failure}; stopping the app ({ROW['exit_on_failed'].env}=1)")
            self.start_stop(f"{ROW['exit_on_failed'].env}=1")

    def start_stop(self, detail: str) -> None:
        if self.reload is not None:
            self.reload.stop_requested()
        self.stopping = True
        self.checker.stop()  # the HTTP endpoint stays up: it must answer 503 while we stop
        self.ready_watch.note_stop()  # before `stopping` replaces a `failed` state
        status = detail + self.ready_watch.stop_note()
        # Retried: the ready marker is gone either way, but status.json must not keep saying ready.
        self.status_file.attempt(lambda: rundir.write(self.settings.run_dir, "stopping", detail=status), retry=True)
        self.drain_until = time.monotonic() + self.settings.drain_seconds
        log.info(f"{detail}: not ready now; {signal_name(self.settings.stop_signal)} "
                 f"follows after a {self.settings.drain_seconds:g}s drain")

    def advance_stop(self) -> None:
        if not self.stopping or self.app_code is not None:
            return
        now = time.monotonic()
        if not self.stop_sent and now >= self.drain_until:
            self.to_group(self.settings.stop_signal)
            self.stop_sent = True
            self.kill_at = now + self.settings.stop_timeout
            self.quit_at = max(now, self.kill_at - 1.0)
        if self.stop_sent and self.settings.thread_dump and not self.quit_sent and now >= self.quit_at:
            log.info("stop timeout is near: sending SIGQUIT for a thread dump")
            self.to_group(signal.SIGQUIT)
            self.quit_sent = True
        if self.stop_sent and not self.killed and now >= self.kill_at:
            log.warning(f"the app did not stop within {self.settings.stop_timeout:g}s: sending SIGKILL")
            self.to_group(signal.SIGKILL)
            self.killed = True

    # --- children ----------------------------------------------------------------------------

    def reap(self) -> None:
        for pid, code in reaper.reap():
            if pid == self.app:
                if self.reload is None or not self.reload.app_exited(code):  # else restarted in the pod
                    self.app_code = code
                continue
            for helper in self.helpers():
                if pid == helper.pid:
                    helper.died(code)
                    break
            else:
                self.counters.reaped()

    def finish(self) -> int:
        """The app is gone: end the checker, give the rest of its group a short grace, record, exit."""
        assert self.app_code is not None
        self.checker.stop()
        if self.reload is not None:
            self.reload.end(self.app_code)
        self.drain_group(min(EXIT_GRACE, self.settings.stop_timeout))
        raw = self.app_code if self.app_code >= 0 else 128 - self.app_code
        if self.killed:
            cause = logdir.KILLED_AFTER_TIMEOUT
        elif self.stopping:
            cause = logdir.STOPPED
        elif self.app_code < 0:
            cause = logdir.SIGNAL
        else:
            cause = logdir.EXITED
        from bootstrap.pid1 import forensics  # only now: the evidence the app left (OOM, crash, dumps)

        found = forensics.examine(self.plan.jvm, self.app_code, cause, self.ready_watch.failure,
                                  self.ready_watch.live_failure)
        failed = found["reason"] in forensics.FAILED_REASONS
        code = raw if failed else self.settings.remap(raw)  # a stop for never being ready is no clean stop
        detail = f"{cause}, exit code {raw}" + (f" (remapped to {code})" if code != raw else "")
        if self.app_code < 0:
            detail += f", killed by {signal_name(-self.app_code)}"
        if failed:  # the cause first: a termination message is read from its start
            detail = f"{forensics.summary(found)}; {detail}"
        elif forensics.summary(found):
            detail += f": {forensics.summary(found)}"
        detail += self.reload.exit_text() if self.reload is not None else ""
        # Each write is tried once more here; whatever fails, the exit code and the termination
        # message below stay right.
        self.status_file.drop()
        self.status_file.attempt(lambda: rundir.write(self.settings.run_dir, "exited", exit_code=code, raw_exit_code=raw,
                                                      cause=cause, detail=detail, reason=found["reason"]))
        self.journal.add(logdirs.record_line(self.settings, self.plan.ip, "exit", self.app,
                                             exit_code=code, raw_exit_code=raw, cause=cause, **found,
                                             **(self.reload.exit_note if self.reload is not None else {})))
        write_termination_log(self.settings.termination_log, f"{self.settings.app_name}: {detail}\n")
        log.info(f"app {detail}")
        if self.http is not None:
            self.http.stop()
        return code

    def drain_group(self, grace: float) -> None:
        """Whatever is left of the app's process group gets TERM, then KILL after `grace`."""
        if not reaper.group_alive(self.app):
            return
        self.to_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while reaper.group_alive(self.app):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.to_group(signal.SIGKILL)
                deadline = float("inf")  # now just wait for the KILLed processes to be reaped
            signal.sigtimedwait({signal.SIGCHLD}, min(max(remaining, 0.0), MAX_WAKEUP))
            self.reap()


class Counters:
    """What only PID 1 knows, for the metrics endpoint: RUN_DIR/supervisor.json, written by PID 1 only."""

    def __init__(self, started_at: float, phases: dict[str, float]) -> None:
        self.started_at = started_at
        self.phases = phases
        self.signals: dict[str, int] = {}
        self.zombies = 0
        self.reloads: dict[str, int] = {}  # "action/result" -> count
        self.config_applied_at: str | None = None
        self.changed = True
        self._helpers_seen: list[tuple[int, int | None]] = []
        self.side = SideWrite(rundir.SUPERVISOR_FILE)

    def forwarded(self, name: str) -> None:
        self.signals[name] = self.signals.get(name, 0) + 1
        self.changed = True

    def reaped(self) -> None:
        self.zombies += 1
        self.changed = True

    def reloaded(self, action: str, result: str, applied_at: float | None) -> None:
        """A config reload (pid1/reload.py): counted by action and result, for the metrics."""
        key = f"{action}/{result}"
        self.reloads[key] = self.reloads.get(key, 0) + 1
        if applied_at is not None:
            self.config_applied_at = rundir.iso_time(applied_at)
        self.changed = True

    def save_if_changed(self, run_dir: str, app: int, helpers: list[ForkedHelper]) -> None:
        seen = [(h.restarts, h.pid) for h in helpers]
        if not self.changed and seen == self._helpers_seen:
            return
        doc = {"supervisor_pid": os.getpid(), "app_pid": app, "started_at": rundir.iso_time(self.started_at),
               "phases": self.phases, "signals_forwarded": self.signals, "zombies_reaped": self.zombies,
               "helper_restarts": {h.name: h.restarts for h in helpers},
               "helper_pids": {h.name: h.pid for h in helpers},
               "config_reloads": self.reloads, "config_applied_at": self.config_applied_at}
        self.side.what = os.path.join(run_dir, rundir.SUPERVISOR_FILE)
        if not self.side.attempt(lambda: rundir.write_json(run_dir, rundir.SUPERVISOR_FILE, doc)):
            return  # still changed: the next loop turn tries again
        self.changed = False
        self._helpers_seen = seen


def log_origin(path: str) -> tuple[int, int] | None:
    """Where the ready log stands before the app starts (inode, size): lines up to that size in
    that inode never count. None when it is missing: every line the checker reads later is new."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size


def write_termination_log(path: str, message: str) -> None:
    """Kubernetes shows this file's text as the container's termination message."""
    if not os.path.exists(path) or not os.access(path, os.W_OK):
        return
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(message)
    except OSError as exc:
        log.warning(f"cannot write the termination message to {path}: {exc.strerror}")
