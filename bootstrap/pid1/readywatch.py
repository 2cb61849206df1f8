"""What PID 1 needs of the readiness state, which the checker owns: whether the app was stopped
after the state turned `failed`, or while the probe ports held the live port closed (so the exit
record and the termination message name that failure, not a clean stop), and, with
`exit_on_failed`, the moment to stop it.

PID 1 reads status.json (a small JSON file, replaced atomically) only at a stop, and with
`exit_on_failed` from the startup deadline on, twice a second, until the state is `failed` or the
app has been ready once (after which `failed` cannot come). Standard library only: PID 1 runs this.
"""
from __future__ import annotations

import time

from bootstrap import rundir

POLL = 0.5  # seconds between reads of status.json past the startup deadline (exit_on_failed)
FAILED = "failed"


class ReadyWatch:
    def __init__(self, run_dir: str, ready_timeout: float, exit_on_failed: bool) -> None:
        self.run_dir = run_dir
        self.failure = ""  # the checker's detail when the app was stopped in state `failed`
        self.live_failure = ""  # why the live port was closed when the app was stopped
        # monotonic time of the next read of status.json, None: no reads (off, or ready once)
        self.check_at: float | None = time.monotonic() + ready_timeout if exit_on_failed else None

    def next_deadline(self) -> float | None:
        return self.check_at

    def note_stop(self) -> None:
        """At the start of a stop, before PID 1 writes `stopping`: remember a `failed` state."""
        self.check_at = None
        status = rundir.read(self.run_dir) or {}
        if status.get("state") == FAILED:
            self.failure = str(status.get("detail") or "not ready within the startup deadline")
        else:
            self.live_failure = rundir.read_not_live(self.run_dir)

    def stop_note(self) -> str:
        """What `stopping`'s detail adds: the failure the stop follows, if any."""
        if self.failure:
            return f"; readiness had failed: {self.failure}"
        return f"; not live: {self.live_failure}" if self.live_failure else ""

    def failed_now(self) -> str:
        """With exit_on_failed, past the deadline: the failure's detail once the state is `failed`
        (the caller then stops the app), else ""."""
        if self.check_at is None or time.monotonic() < self.check_at:
            return ""
        status = rundir.read(self.run_dir) or {}
        if status.get("state") == FAILED:
            self.check_at = None
            return str(status.get("detail") or "not ready within the startup deadline")
        # Ready once: `failed` cannot come any more. Else the checker has not written it yet.
        self.check_at = None if status.get("ready_at") else time.monotonic() + POLL
        return ""
