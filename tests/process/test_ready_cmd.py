"""BOOTSTRAP_READY_CMD run for real: exit codes, signals, output, timeouts and its process group."""
from __future__ import annotations

import signal
from pathlib import Path

import psutil

from bootstrap.helpers.checks import check_cmd
from bootstrap.procs import CATCHABLE
from tests.support.waiting import wait_until


def test_cmd_exit_codes() -> None:
    assert check_cmd(("true",)).ok
    failed = check_cmd(("false",))
    assert not failed.ok and failed.detail == "exit 1"


def test_cmd_detail_has_last_output_line() -> None:
    outcome = check_cmd(("sh", "-c", "echo starting; echo 'db not reachable' >&2; exit 3"))
    assert not outcome.ok
    assert outcome.detail == "exit 3: db not reachable"


def test_cmd_runs_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "x"
    outcome = check_cmd(("touch", f"{marker}; false"))  # one argument, not a command list
    assert outcome.ok
    assert (tmp_path / "x; false").exists() and not marker.exists()


def test_cmd_not_found() -> None:
    outcome = check_cmd(("no-such-command-here",))
    assert not outcome.ok
    assert "no such file" in outcome.detail


def test_cmd_timeout_kills_its_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    outcome = check_cmd(("sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"), timeout=0.3)
    assert not outcome.ok and outcome.detail == "timed out after 0.3s"
    grandchild = int(pidfile.read_text())
    # killed by the group SIGKILL: gone, or a zombie waiting for its (init) reaper
    wait_until(lambda: not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie", 5)


def test_cmd_gets_unblocked_signals_even_from_a_blocked_checker() -> None:
    # The checker inherits PID 1's fully blocked mask; the command must not.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
    try:
        outcome = check_cmd(("sh", "-c", r"grep -Eq '^SigBlk:\s*0+$' /proc/self/status"))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    assert outcome.ok, outcome


def test_cmd_killed_by_signal() -> None:
    outcome = check_cmd(("sh", "-c", "kill -TERM $$"))
    assert not outcome.ok
    assert outcome.detail == "killed by signal 15"


def test_cmd_chatty_output_does_not_block() -> None:
    outcome = check_cmd(("sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' 'x'; echo; echo done"))
    assert outcome.ok and outcome.detail == "exit 0: done"
