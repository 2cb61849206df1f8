"""The readiness checker's counters, kept in RUN_DIR/checks.json for the metrics endpoint:
per-check counts, failures and a duration histogram, transitions into ready, time to ready.

The checker writes them; the HTTP helper (`metrics`) reads the file at scrape time. Standard
library only, and nothing of the metrics code: the checker's memory is in the budget.
"""
from __future__ import annotations

from bootstrap import rundir
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

# Check durations, seconds: a local TCP connect takes well under a millisecond, a command up to
# checks.CMD_TIMEOUT (10 s).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The kinds of readiness check, which the counters are kept by and the metrics label by. Named
# here, not in checks.py, because the metrics must not load the checks.
TCP_KIND, HTTP_KIND, LOG_KIND, CMD_KIND, RUNNING_KIND = "tcp", "http", "log", "cmd", "running"
CHECK_KINDS = (TCP_KIND, HTTP_KIND, LOG_KIND, CMD_KIND, RUNNING_KIND)
SAVE_INTERVAL = 1.0  # checks.json is rewritten at most this often, except on a state change


class CheckStats:
    """Counts kept by the readiness checker and saved to RUN_DIR/checks.json.

    A restarted checker (same app pid) carries on from the file, so the counters only go up for
    the life of the app. Writes are cheap: at most one per SAVE_INTERVAL, plus one per state change.
    """

    def __init__(self, run_dir: str, app_pid: int, started_at: float) -> None:
        self.run_dir = run_dir
        self.app_pid, self.started_at = app_pid, started_at
        previous = rundir.read_json(run_dir, rundir.CHECKS_FILE) or {}
        mine = previous.get("app_pid") == app_pid and previous.get("le") == list(BUCKETS)
        self.checks: dict[str, dict[str, Any]] = previous.get("checks", {}) if mine else {}
        self.transitions: int = previous.get("ready_transitions", 0) if mine else 0
        self.time_to_ready: float | None = previous.get("time_to_ready") if mine else None
        self.dirty = self.urgent = not mine
        self.saved_at = 0.0

    def observe(self, kind: str, seconds: float, ok: bool) -> None:
        entry = self.checks.setdefault(kind, {"count": 0, "failures": 0, "sum": 0.0,
                                              "buckets": [0] * (len(BUCKETS) + 1)})
        entry["count"] += 1
        entry["failures"] += 0 if ok else 1
        entry["sum"] += seconds
        entry["buckets"][next((i for i, le in enumerate(BUCKETS) if seconds <= le), len(BUCKETS))] += 1
        self.dirty = True

    def entered(self, state: str, now: float) -> None:
        """The checker published a new state (`now` is wall-clock time)."""
        if state == "ready":
            self.transitions += 1
            if self.time_to_ready is None:
                self.time_to_ready = max(0.0, now - self.started_at)
        self.dirty = self.urgent = True

    def save(self, now: float) -> None:
        """Writes checks.json if something changed and it is due (`now` is monotonic)."""
        if not self.dirty or (not self.urgent and now - self.saved_at < SAVE_INTERVAL):
            return
        doc = {"app_pid": self.app_pid, "le": list(BUCKETS), "checks": self.checks,
               "ready_transitions": self.transitions, "time_to_ready": self.time_to_ready}
        try:
            rundir.write_json(self.run_dir, rundir.CHECKS_FILE, doc)
        except OSError:
            return  # a full or read-only run dir costs the metrics, never readiness; retried later
        self.dirty = self.urgent = False
        self.saved_at = now
