"""Side writes on a failing disk: rundir.write_atomic leaves nothing behind, journal lines are
whole or absent, SideWrite logs once per outage and retries."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bootstrap import logdir, rundir
from bootstrap.pid1 import logdirs
from bootstrap.pid1.sidewrite import Journal, SideWrite


def test_write_atomic_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "status.json"
    path.write_text("old\n")
    calls = []

    def short_then_full(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:3]))  # a short write, as on a nearly full disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_write = os.write
    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(OSError):
        rundir.write_atomic(str(path), b"new content\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]


def test_append_lines_takes_a_short_write_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / logdir.RECORD_FILE
    journal.write_text('{"event": "start"}\n')
    real_write = os.write

    def short_then_full(fd: int, data: bytes) -> int:
        if len(data) > 5:
            return real_write(fd, bytes(data[:5]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(OSError):
        logdirs.append_lines(str(tmp_path), b'{"event": "exit"}\n')
    monkeypatch.undo()
    assert journal.read_text() == '{"event": "start"}\n'


def test_side_write_logs_once_and_retries(capfd: pytest.CaptureFixture[str]) -> None:
    disk = {"full": True, "written": 0}

    def write() -> None:
        if disk["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        disk["written"] += 1

    side = SideWrite("/run/bootstrap/status.json")
    assert not side.attempt(write, retry=True)
    side.retry()
    side.retry()
    disk["full"] = False
    side.retry()
    side.retry()  # nothing pending any more
    err = capfd.readouterr().err.splitlines()
    assert disk["written"] == 1
    assert err == ["bootstrap: warning: cannot write /run/bootstrap/status.json: No space left on device; "
                   "the app keeps running; retrying while the app runs",
                   "bootstrap: info: /run/bootstrap/status.json is written again"]


def test_journal_keeps_order_and_writes_the_backlog_at_once() -> None:
    written: list[bytes] = []
    full = [True]

    def append(data: bytes) -> None:
        if full[0]:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        written.append(data)

    journal = Journal(append, "journal")
    assert not journal.add(b"start\n")
    full[0] = False
    assert journal.add(b"exit\n")
    assert written == [b"start\nexit\n"]
