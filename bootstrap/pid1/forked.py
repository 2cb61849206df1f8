"""Helper processes forked from PID 1: the readiness checker, and the HTTP endpoint when enabled.

They do the heavy work (psutil, requests, watchdog, prometheus-client) so that PID 1 stays
small. A helper that dies is restarted, with a backoff when it dies young so a broken check
cannot spin PID 1's CPU; one that stops sending heartbeats is killed and restarted the same way.
A helper never outlives bootstrap (`end_with`). The app is never touched by any of this.
"""
from __future__ import annotations

import os
import signal
import time

from bootstrap import log

PR_SET_PDEATHSIG = 1
MAX_BACKOFF = 30.0
HEALTHY_AFTER = 60.0  # a helper that lived this long is restarted at once when it dies


class ForkedHelper:
    def __init__(self, name: str, entry: str, args: tuple[object, ...], heartbeat_timeout: float | None) -> None:
        self.name = name
        # "module:function", imported in the child only, called as function(*args, heartbeat_fd);
        # it must not return normally
        self.entry, self.args = entry, args
        self.heartbeat_timeout = heartbeat_timeout
        self.pid: int | None = None
        self.restarts = 0
        self.enabled = True
        self._beat_fd = -1
        self._last_beat = self._started = self._restart_at = 0.0
        self._delay = 0.0

    def start(self) -> None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                end_with(parent)
                import importlib  # in the child only: PID 1 never imports a helper

                module, function = self.entry.split(":")
                getattr(importlib.import_module(module), function)(*self.args, write_end)
            except Exception as exc:  # a helper's fault must never reach PID 1's loop
                log.error(f"{self.name} crashed: {exc!r}")
            finally:
                os._exit(70)
        os.close(write_end)
        self.pid, self._beat_fd = pid, read_end
        self._last_beat = self._started = time.monotonic()

    def stop(self) -> None:
        """SIGKILL and wait, so nothing the helper writes can follow what PID 1 writes next."""
        self.enabled = False
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass  # already reaped
            self._gone()

    def _gone(self) -> None:
        self.pid = None
        if self._beat_fd >= 0:
            os.close(self._beat_fd)
            self._beat_fd = -1

    def died(self, code: int) -> None:
        self._gone()
        if not self.enabled:
            return
        lived = time.monotonic() - self._started
        self._delay = 0.0 if lived > HEALTHY_AFTER else min(MAX_BACKOFF, max(0.5, self._delay * 2))
        self._restart_at = time.monotonic() + self._delay
        log.warning(f"{self.name} exited ({code}); restarting it in {self._delay:g}s, the app is not affected")

    def watch(self) -> None:
        """Called on every loop turn: restart when due, read heartbeats, kill when silent."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.pid is None:
            if now >= self._restart_at:
                self.restarts += 1
                self.start()
            return
        try:
            if os.read(self._beat_fd, 4096):
                self._last_beat = now
        except BlockingIOError:
            pass
        if self.heartbeat_timeout is not None and now - self._last_beat > self.heartbeat_timeout:
            log.warning(f"{self.name} gave no heartbeat for {self.heartbeat_timeout:g}s: killing it")
            os.kill(self.pid, signal.SIGKILL)
            self._last_beat = now  # the reap restarts it

    def next_deadline(self) -> float | None:
        return self._restart_at if self.enabled and self.pid is None else None


def end_with(parent: int) -> None:
    """In a helper just forked: die with bootstrap. Run as PID 1, the kernel ends every process of
    the namespace when PID 1 dies; otherwise (a subreaper, or under a test) an orphaned helper would
    be adopted by init and live on, so the kernel is asked for SIGKILL when the parent dies. Then
    the parent is checked again, in case it died before the request was made."""
    if parent != 1:
        import ctypes  # in the child only; already loaded when bootstrap is a subreaper (reaper.py)

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(70)
