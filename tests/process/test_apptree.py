"""apptree: the scan of the app's process group for a JVM, and the hint the checker logs once."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.helpers import apptree
from tests.support.waiting import wait_until


@pytest.fixture
def java(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose comm and exe are `java`, leading a process group of its own."""
    exe = tmp_path / "java"
    exe.write_bytes(Path("/bin/sleep").read_bytes())
    exe.chmod(0o755)
    proc = subprocess.Popen([str(exe), "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_find_jvm_in_a_process_group(java: subprocess.Popen[bytes]) -> None:
    assert wait_until(lambda: apptree.find_jvm(java.pid), 5) == java.pid
    assert apptree.find_jvm(os.getpgid(0)) is None


def test_jvm_hint_is_logged_once(java: subprocess.Popen[bytes], capfd: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apptree, "JVM_SCAN_INTERVAL", 0.0)
    wait_until(lambda: apptree.find_jvm(java.pid), 5)
    hint = apptree.JvmHint(java.pid)
    hint.poll(app_ready=False)
    hint.poll(app_ready=False)
    err = capfd.readouterr().err
    assert err.count(f"found a JVM (pid {java.pid})") == 1 and "BOOTSTRAP_THREAD_DUMP=1" in err
    assert hint.done


def test_jvm_hint_stops_looking_once_the_app_is_ready(capfd: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apptree, "JVM_SCAN_INTERVAL", 0.0)
    hint = apptree.JvmHint(os.getpgid(0))  # this group runs no JVM
    hint.poll(app_ready=False)
    assert not hint.done
    hint.poll(app_ready=True)
    assert hint.done and "found a JVM" not in capfd.readouterr().err
    assert apptree.JvmHint(os.getpgid(0), done=True).done  # a restarted checker after ready


