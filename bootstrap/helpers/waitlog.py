"""While the app is not ready, its current reason in the agent's log, one line at growing intervals:
10 s, 30 s and 60 s into a not-ready spell, then every 5 minutes. A wrong check then shows in the
container's log within seconds, not only in status.json; a long outage costs a line per 5 minutes.

A spell starts with the app (state `starting`, and `failed` past the deadline) or when a ready app
turns `not_ready`, and ends when it is ready again. Used by the readiness checker.
"""
from __future__ import annotations

STEPS = (10.0, 30.0, 60.0)  # seconds into a spell
REPEAT = 300.0  # then every this many seconds


def due(step: int) -> float:
    """Seconds into a spell at which line `step` (0, 1, …) is written."""
    if step < len(STEPS):
        return STEPS[step]
    return STEPS[-1] + REPEAT * (step - len(STEPS) + 1)


class WaitLog:
    def __init__(self, began: float | None) -> None:
        self.began = began  # monotonic start of the current spell; None while ready
        self.step = 0

    def note(self, state: str, detail: str, now: float) -> str:
        """The line to log now for this state and detail, or ""."""
        if state == "ready":
            self.began = None
            return ""
        if self.began is None:  # a ready app turned not_ready: a new spell
            self.began, self.step = now, 0
        elapsed = now - self.began
        if elapsed < due(self.step):
            return ""
        while due(self.step) <= elapsed:  # a checker restarted late in a spell says it once
            self.step += 1
        return f"not ready for {elapsed:.0f}s ({state}): {detail}"
