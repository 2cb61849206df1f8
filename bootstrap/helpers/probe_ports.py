"""The kubelet's probe ports: a thread of the readiness checker (never PID 1) that turns the run
dir's state into listening sockets, so `tcpSocket` probes cost the pod an accept and a close and
fork nothing. (A process of its own, forked from PID 1, was measured at 3.7 MB PSS more for the
whole agent; as a thread of the checker it costs a thread stack. bench/run.py, section 2.)

- The ready port (`BOOTSTRAP_READY_PORT`) listens exactly while `RUN_DIR/ready` exists. A
  connection is accepted while ready and refused otherwise: the readiness probe.
- The live port (`BOOTSTRAP_LIVE_PORT`) listens from the moment the app has been started (the
  checker is forked right after it), so the startup probe passes at once and never holds readiness
  back. It closes while the app is unhealthy, which fails the liveness probe:
  - the app's process is stopped (SIGSTOP, state T in /proc/PID/stat);
  - the state is `failed` (the startup deadline `BOOTSTRAP_READY_TIMEOUT` passed without ready);
  - the state has been `not_ready` for longer than `BOOTSTRAP_LIVE_WINDOW` (0: never).
  It opens again as soon as none of these holds.
- Both listeners have the kernel's largest backlog, so a flood of connects from any client cannot
  crowd out the kubelet's. While a checker hangs the kernel still completes handshakes; its
  heartbeat stops, and PID 1 kills it after BOOTSTRAP_CHECKER_TIMEOUT and starts a new one.
  A checker that dies takes its listeners with it; PID 1 restarts it within a second, and the
  probes' failure thresholds absorb the gap. While the app stops (SIGTERM) the checker is ended:
  both ports close, and the kubelet stops liveness probing once the pod is being deleted.
- Listening is dual-stack on `::`, or IPv4 alone on a kernel without IPv6 (`listen`). A port that
  cannot be bound (in use, say) is one error line naming its setting, and is retried every second.

The thread wakes only for an event: a connection, or a byte on the notify pipe, which the
checker's every status write sends (`rundir.write`). While the live port is closed (and while a
not_ready window runs) it also wakes once a second to re-check. The app's process state is read on
each liveness connection, so a healthy pod costs one /proc read per liveness probe and nothing in
between.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import time

from bootstrap import log, rundir
from bootstrap.helpers.apptree import proc_stat
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NoReturn

    from bootstrap.settings.table import Settings

# The setting of each port, for the error message when it cannot be bound.
PORT_VARS = {rundir.READY_PROBE: "BOOTSTRAP_READY_PORT", rundir.LIVE_PROBE: "BOOTSTRAP_LIVE_PORT"}
# The kernel's maximum (capped by net.core.somaxconn): a burst of connects from any client must
# not overflow the queue, or the kernel drops the kubelet's SYN and its probe times out.
BACKLOG = socket.SOMAXCONN
# The errors that mean "this kernel has no IPv6" (then IPv4 alone), and not "this port is taken"
IPV6_UNAVAILABLE = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL})
RECHECK_INTERVAL = 1.0  # while the live port is closed, or a not_ready window runs


def app_stopped(pid: int) -> bool:
    """True when the app's main process is stopped by a signal (SIGSTOP, SIGTSTP) or traced; a
    process that is gone is not stopped (PID 1 reaps it and ends the pod)."""
    stat = proc_stat(pid)
    return stat is not None and stat[1] in ("T", "t")


class ProbePorts:
    def __init__(self, settings: Settings, app_pid: int, notify_fd: int) -> None:
        self.run_dir, self.app_pid, self.notify_fd = settings.run_dir, app_pid, notify_fd
        self.ports = {rundir.READY_PROBE: settings.ready_port, rundir.LIVE_PROBE: settings.live_port}
        self.window = settings.live_window
        self.listeners: dict[str, socket.socket] = {}
        self.poller = select.poll()
        self.poller.register(notify_fd, select.POLLIN)
        self.state: str | None = None
        self.not_ready_since: float | None = None
        self.live_problem: str | None = None
        self.bind_failed: set[str] = set()
        self.record_not_live(None)  # what a checker before this one left; written again if still so

    # --- the decisions ---------------------------------------------------------------------

    def read_state(self) -> None:
        doc = rundir.read(self.run_dir)
        state = doc.get("state") if doc else None
        if state == "not_ready" and self.state != "not_ready":
            self.not_ready_since = time.monotonic()
        elif state != "not_ready":
            self.not_ready_since = None
        self.state = state if isinstance(state, str) else None

    def unhealthy(self) -> str | None:
        """Why the app is not live, or None."""
        if app_stopped(self.app_pid):
            return f"the app (pid {self.app_pid}) is stopped"
        if self.state == "failed":
            return "the app was not ready within its startup deadline (state failed)"
        if self.window > 0 and self.not_ready_since is not None:
            failing = time.monotonic() - self.not_ready_since
            if failing > self.window:
                return f"the readiness checks have failed for {failing:.0f}s (BOOTSTRAP_LIVE_WINDOW={self.window:g})"
        return None

    def update(self) -> None:
        """Opens or closes each listener to match the state."""
        ready = os.path.exists(os.path.join(self.run_dir, rundir.READY_FILE))
        self.set_open(rundir.READY_PROBE, ready)
        problem = self.unhealthy()
        if problem != self.live_problem:
            if problem:
                log.warning(f"probe ports: not live: {problem}; the liveness probe fails until it clears")
            elif self.live_problem:
                log.info("probe ports: live again")
            self.live_problem = problem
            self.record_not_live(problem)
        self.set_open(rundir.LIVE_PROBE, problem is None)

    def record_not_live(self, problem: str | None) -> None:
        """RUN_DIR/not-live holds the reason while the live port is closed: PID 1 names it in the
        exit record when the kubelet's liveness kill follows. A failed write is logged, never fatal."""
        try:
            rundir.write_not_live(self.run_dir, problem)
        except OSError as exc:
            log.warning(f"probe ports: cannot record why the app is not live in {self.run_dir} ({exc.strerror})")

    def set_open(self, kind: str, wanted: bool) -> None:
        port = self.ports[kind]
        if port is None:
            return
        sock = self.listeners.get(kind)
        if wanted and sock is None:
            try:
                sock = listen(port)
            except OSError as exc:
                if kind not in self.bind_failed:  # say it once; retried on every re-check
                    log.error(f"probe ports: cannot listen on port {port} for the {kind} probe ({exc.strerror}); "
                              f"set {PORT_VARS[kind]} to a free port")
                    self.bind_failed.add(kind)
                return
            self.bind_failed.discard(kind)
            self.listeners[kind] = sock
            self.poller.register(sock.fileno(), select.POLLIN)
        elif not wanted and sock is not None:
            self.poller.unregister(sock.fileno())
            sock.close()  # queued connections are reset: a probe in flight fails, as it should
            del self.listeners[kind]

    # --- the loop --------------------------------------------------------------------------

    def timeout_ms(self) -> int | None:
        waiting = (self.live_problem is not None or self.bind_failed
                   or (self.window > 0 and self.not_ready_since is not None))
        return int(RECHECK_INTERVAL * 1000) if waiting else None

    def run(self) -> NoReturn:
        self.read_state()
        self.update()
        while True:
            events = self.poller.poll(self.timeout_ms())
            changed = not events
            for fd, _ in events:
                if fd == self.notify_fd:
                    drain(fd)
                    self.read_state()
                    changed = True
                    continue
                kind = next(k for k, s in self.listeners.items() if s.fileno() == fd)
                accept_all(self.listeners[kind])
                if kind == rundir.LIVE_PROBE:
                    changed = True  # each liveness probe re-reads the app's process state
            if changed:
                self.update()


def listen(port: int) -> socket.socket:
    """A non-blocking listener on port: dual-stack on ::, or on 0.0.0.0 when the kernel has no IPv6
    (booted with ipv6.disable=1: EAFNOSUPPORT; or no address for ::). Any other error (a port in
    use, no permission) is raised: falling back then would listen on half a port that someone
    else answers on the other half."""
    try:
        sock = bind(socket.AF_INET6, ("::", port))
    except OSError as exc:
        if exc.errno not in IPV6_UNAVAILABLE:
            raise
        sock = bind(socket.AF_INET, ("0.0.0.0", port))
    try:
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def bind(family: int, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # PID 1 holds the live port beside this listener while it restarts the app in the pod
        # (pid1/restart.py); only processes of the same user may share it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 and IPv6 on one socket
            except OSError:
                pass  # the system default (net.ipv6.bindv6only) stays
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def accept_all(sock: socket.socket) -> None:
    """A probe only needs the handshake: accept and close whatever is queued."""
    while True:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # e.g. ECONNABORTED: the prober already left
        conn.close()


def drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


