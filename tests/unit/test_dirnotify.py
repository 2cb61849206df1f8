"""bootstrap.helpers.dirnotify: the config watcher's directory notification, in this process (the
signals it uses are blocked here for the test and the mask restored after)."""
from __future__ import annotations

import fcntl
import os
import signal
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.helpers.dirnotify import F_OWNER_TID, WAKE_SIGNALS, DirNotify, tree_dirs

F_GETOWN_EX = 16  # <fcntl.h> on Linux


@pytest.fixture
def notify() -> Iterator[DirNotify]:
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    watcher = DirNotify()
    yield watcher
    watcher.close()
    while signal.sigtimedwait(WAKE_SIGNALS, 0) is not None:  # nothing left queued for this process
        pass
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def test_writes_creates_removes_and_renames_wake_it(notify: DirNotify, tmp_path: Path) -> None:
    assert notify.watch([str(tmp_path)]) == []
    assert not notify.wait(0.05)
    target = tmp_path / "a.properties"
    target.write_text("a=1\n")
    assert notify.wait(2)
    assert not notify.wait(0.05)  # the whole queue was taken at once
    with target.open("a") as fh:
        fh.write("b=2\n")
    assert notify.wait(2)
    os.symlink("a.properties", tmp_path / "..data_tmp")
    os.rename(tmp_path / "..data_tmp", tmp_path / "..data")
    assert notify.wait(2)
    target.unlink()
    assert notify.wait(2)


def test_reads_and_attribute_changes_do_not_wake_it(notify: DirNotify, tmp_path: Path) -> None:
    target = tmp_path / "a.properties"
    target.write_text("a=1\n")
    notify.watch([str(tmp_path)])
    assert target.read_text() == "a=1\n"
    target.chmod(0o600)
    os.utime(target)
    assert not notify.wait(0.1)


def test_only_watched_directories_wake_it_and_the_set_follows_watch(notify: DirNotify, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    notify.watch([str(tmp_path)])
    (sub / "x").write_text("x")
    assert not notify.wait(0.1)  # a subdirectory is not its parent
    notify.watch([str(tmp_path), str(sub)])
    (sub / "y").write_text("y")
    assert notify.wait(2)
    notify.watch([str(sub)])  # the parent dropped: its descriptor closed
    assert len(notify.fds) == 1
    (tmp_path / "z").write_text("z")
    assert not notify.wait(0.1)


def test_a_missing_directory_is_reported_not_raised(notify: DirNotify, tmp_path: Path) -> None:
    assert notify.watch([str(tmp_path / "gone"), str(tmp_path)]) == [str(tmp_path / "gone")]
    assert len(notify.fds) == 1


def test_tree_dirs_walks_real_directories_only_and_stops_at_the_limit(tmp_path: Path) -> None:
    for name in ("a", "a/b", "c"):
        (tmp_path / name).mkdir()
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    os.symlink(outside, tmp_path / "link")  # a linked directory: the re-read, not a watch, covers it
    found, cut = tree_dirs([str(tmp_path), str(tmp_path / "missing")], 100)
    assert sorted(found) == sorted(str(tmp_path / n) for n in ("", "a", "a/b", "c")) and not cut
    found, cut = tree_dirs([str(tmp_path)], 2)
    assert len(found) == 2 and cut


def test_the_signals_are_aimed_at_the_watching_thread(notify: DirNotify, tmp_path: Path) -> None:
    """Not at the process: another thread that does not block them (pytest's, an app library's)
    would be ended by one. The owner of each descriptor is this thread (F_GETOWN_EX)."""
    notify.watch([str(tmp_path)])
    (fd,) = notify.fds.values()
    owner_type, owner = struct.unpack("ii", fcntl.fcntl(fd, F_GETOWN_EX, bytes(8)))
    assert (owner_type, owner) == (F_OWNER_TID, threading.get_native_id())
