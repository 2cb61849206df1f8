"""PID 1's side writes (status.json, supervisor.json, the journal) on a disk that may be full or
read-only: a failure is logged once, retried later where that makes sense, and never raised into
the supervision loop. As PID 1, an uncaught OSError would take the app down with it."""
from __future__ import annotations

from bootstrap import log
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class SideWrite:
    """One kind of write. `attempt` returns whether it succeeded; a failed write that was asked to
    be retried is kept as `pending` and tried again by `retry` on a later loop turn."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing = False
        self.pending: Callable[[], object] | None = None

    def attempt(self, write: Callable[[], object], retry: bool = False) -> bool:
        try:
            write()
        except OSError as exc:
            self.pending = write if retry else None
            if not self.failing:  # one line per outage, not one per loop turn
                later = "; retrying while the app runs" if retry else ""
                log.warning(f"cannot write {self.what}: {exc.strerror or exc}; the app keeps running{later}")
            self.failing = True
            return False
        self.pending = None
        if self.failing:
            log.info(f"{self.what} is written again")
            self.failing = False
        return True

    def retry(self) -> None:
        if self.pending is not None:
            self.attempt(self.pending, retry=True)

    def drop(self) -> None:
        """A newer write makes the pending one pointless."""
        self.pending = None


class Journal:
    """The log dir's start/exit records. Lines that could not be written wait here, in order, and
    go out together on the next try: each try writes all of them or none."""

    def __init__(self, append: Callable[[bytes], None], what: str) -> None:
        self.append = append
        self.backlog: list[bytes] = []
        self.side = SideWrite(what)

    def add(self, line: bytes) -> bool:
        self.backlog.append(line)
        return self.flush()

    def flush(self) -> bool:
        if not self.backlog:
            return True
        data = b"".join(self.backlog)
        written = self.side.attempt(lambda: self.append(data), retry=True)
        self.side.drop()  # the backlog is the retry: the supervisor calls flush on every loop turn
        if written:
            self.backlog.clear()
        return written
