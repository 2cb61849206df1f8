"""BOOTSTRAP_RELOAD=restart: the app restarted inside the pod, which keeps its IP and log dir.

1. Not ready at once: the readiness checker (and with it the ready port) is ended and the
   `ready` marker removed (state `not_ready`), as on SIGTERM.
2. The drain, then the stop signal, then SIGKILL after the stop timeout: the supervisor's own stop
   choreography, with the thread dump if set; the rest of the old process group goes as at exit.
3. The config links are brought up to date (new keys linked, removed keys unlinked).
4. The app is started again (same command, environment and user), with a new readiness checker
   and a fresh `starting` state; the startup deadline (BOOTSTRAP_READY_TIMEOUT) counts from here,
   so a restart that is not ready in time ends like a failed start (state `failed`, the live port
   closes, the kubelet restarts the container).

The live port must stay open throughout, or the liveness probe could kill the pod mid-restart.
It is a listener of the checker, which is ended in step 1; so PID 1 first opens one of its own on
the same port (SO_REUSEPORT: both listen, the kernel hands each connect to one of them) and
closes it once the new checker listens again (seen in /proc/net/tcp{,6}). A probe is answered by
the kernel's handshake; PID 1 accepts and closes on each loop turn, so the queue stays short.
"""
from __future__ import annotations

import os
import time

from bootstrap import log, rundir
from bootstrap.errors import BootstrapError
from bootstrap.pid1.forked import ForkedHelper
from bootstrap.pid1.readywatch import ReadyWatch
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from typing import Any

    from bootstrap.pid1.supervisor import Supervisor

LISTEN_STATE = "0A"  # TCP_LISTEN in /proc/net/tcp


class LiveHold:
    """PID 1's own listener on the live port while the checker is away."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def open(self) -> bool:
        import socket

        for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
            sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind((address, self.port))
                sock.listen(socket.SOMAXCONN)
            except OSError:
                sock.close()
                continue
            self.sock = sock
            return True
        return False

    def accept(self) -> None:
        while self.sock is not None:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # nothing queued (or the prober already left)
            conn.close()

    def others_listen(self) -> bool:
        """Another listener (the new checker's) is on the port too."""
        count = 0
        for table in ("/proc/net/tcp6", "/proc/net/tcp"):
            try:
                with open(table, encoding="ascii") as fh:
                    next(fh, None)
                    for line in fh:
                        fields = line.split()
                        if len(fields) > 3 and fields[3] == LISTEN_STATE and \
                                int(fields[1].rsplit(":", 1)[1], 16) == self.port:
                            count += 1
            except (OSError, ValueError):
                continue
        return count >= 2

    def close(self) -> None:
        if self.sock is not None:
            self.accept()
            self.sock.close()
            self.sock = None


class InPodRestart:
    def __init__(self, sup: Supervisor, spawn: Callable[[], int], relink: Callable[[], str],
                 done: Callable[[str, str], None], config: dict[str, Any]) -> None:
        self.sup, self.settings, self.spawn, self.relink, self.done = sup, sup.settings, spawn, relink, done
        self.config = config
        self.phase = "stopping"  # then "starting"; "over" once done
        self.deadline = 0.0
        self.old_pid = sup.app
        self.hold = LiveHold(self.settings.live_port) if self.settings.live_port else None
        self.problem = ""

    def begin(self) -> None:
        sup = self.sup
        held = self.hold is not None and self.hold.open()  # beside the checker's listener (SO_REUSEPORT)
        sup.checker.stop()  # its ready listener closes with it: the readiness probe fails from now
        if self.hold is not None and not held and not self.hold.open():  # the port was not shareable
            self.hold = None
        detail = "restarting the app to apply a config change"
        sup.status_file.attempt(lambda: rundir.write(self.settings.run_dir, "not_ready", detail=detail), retry=True)
        sup.stopping = True
        sup.stop_sent = sup.quit_sent = sup.killed = False
        sup.drain_until = time.monotonic() + self.settings.drain_seconds
        log.info(f"config reload: {detail}: not ready now; the stop signal follows after a "
                 f"{self.settings.drain_seconds:g}s drain")

    def deadlines(self) -> list[float]:
        return [self.deadline] if self.phase == "starting" else []

    def app_exited(self, code: int) -> bool:
        """The old app is gone: start the new one. False when this restart is not waiting for that."""
        if self.phase != "stopping":
            return False
        from bootstrap.pid1.supervisor import CHECKER, EXIT_GRACE, log_origin

        sup = self.sup
        sup.drain_group(min(EXIT_GRACE, self.settings.stop_timeout))
        self.problem = self.relink()
        origin = log_origin(self.settings.ready.log) if self.settings.ready.log else None
        started_at = time.time()
        try:
            new = self.spawn()
        except BootstrapError as exc:
            log.error(f"config reload: cannot start the app again: {exc}")
            self.finish("failed", str(exc))
            return False
        sup.app = new
        sup.stopping = sup.stop_sent = sup.quit_sent = sup.killed = False
        config = dict(self.config)
        sup.status_file.attempt(lambda: rundir.write(
            self.settings.run_dir, "starting", fresh=True, supervisor_pid=os.getpid(), pid=new, config=config,
            detail="restarted to apply a config change; waiting for readiness checks"), retry=True)
        sup.checker = ForkedHelper("readiness checker", CHECKER, (self.settings, new, started_at, origin),
                                   self.settings.checker_timeout)
        sup.checker.start()
        # the startup deadline counts from this start
        sup.ready_watch = ReadyWatch(self.settings.run_dir, self.settings.ready.timeout, self.settings.exit_on_failed)
        sup.counters.changed = True
        self.phase = "starting"
        self.deadline = time.monotonic() + self.settings.ready.timeout
        log.info(f"config reload: the app (pid {self.old_pid}, exit {code}) restarted as pid {new}")
        return True

    def turn(self) -> None:
        if self.hold is not None:
            self.hold.accept()
            if self.phase != "stopping" and self.hold.others_listen():
                self.hold.close()
                self.hold = None
        if self.phase != "starting":
            return
        if os.path.exists(os.path.join(self.settings.run_dir, rundir.READY_FILE)):
            self.finish("ok", f"ready again as pid {self.sup.app} (was {self.old_pid})"
                        + (f"; {self.problem}" if self.problem else ""))
        elif time.monotonic() >= self.deadline:
            self.failed(f"not ready within {self.settings.ready.timeout:g}s")

    def failed(self, detail: str) -> None:
        self.finish("failed", detail)

    def interrupted(self) -> None:
        self.finish("interrupted", "the container is stopping")

    def finish(self, result: str, detail: str) -> None:
        if self.phase == "over":
            return
        self.phase = "over"
        if self.hold is not None:
            self.hold.close()
            self.hold = None
        self.done(result, detail)
