"""A readiness check that never passes, seen from outside: the reason in the agent's log at growing
intervals, and, when the app is stopped after the state turned `failed` (the kubelet's liveness
kill, or BOOTSTRAP_EXIT_ON_FAILED), an exit record and a termination message that name the
failure instead of a clean stop."""
from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bootstrap.settings.table import ReadyChecks
from tests.process import test_readiness
from tests.process.test_readiness import CheckerProc
from tests.support.agent import APP, Agent, records
from tests.support.net import free_port
from tests.support.waiting import wait_until

app, checker = test_readiness.app, test_readiness.checker  # the checker fixtures, as a forked PID 1 helper

pytestmark = pytest.mark.process
Start = Callable[..., Agent]


def lines(proc: CheckerProc, pattern: str) -> list[str]:
    return [line for line in proc.stderr.read_text().splitlines() if re.search(pattern, line)]


def test_the_reason_is_logged_10_s_into_the_spell(checker: Callable[..., CheckerProc]) -> None:
    port = free_port()
    proc = checker(ReadyChecks(tcp=("127.0.0.1", port), timeout=600), started_at=time.time() - 9)
    found = wait_until(lambda: lines(proc, r"not ready for"), timeout=10)
    assert len(found) == 1, found
    assert re.search(rf"not ready for 10s \(starting\): waiting for tcp 127\.0\.0\.1:{port}: .*refused", found[0]), found


def test_the_intervals_grow_and_a_late_checker_catches_up_once(checker: Callable[..., CheckerProc]) -> None:
    """29 s into the spell (a restarted checker): one line for the 10 s step at once, then the 30 s
    step a second later, and nothing until 60 s."""
    port = free_port()
    proc = checker(ReadyChecks(tcp=("127.0.0.1", port), timeout=600), started_at=time.time() - 29)
    found = wait_until(lambda: (lambda f: f if len(f) >= 2 else None)(lines(proc, r"not ready for")), timeout=10)
    assert re.search(r"not ready for 29s \(starting\)", found[0]), found
    assert re.search(r"not ready for 30s \(starting\)", found[1]), found
    time.sleep(2)
    assert len(lines(proc, r"not ready for")) == 2


def failing_agent(start: Start, tmp_path: Path, **extra: str) -> tuple[Agent, Path, int]:
    """An app (exits 143 on TERM, remapped to 0 normally) whose TCP check on a closed port fails
    after a one-second deadline."""
    term_log = tmp_path / "termination-log"
    term_log.write_text("")
    port = free_port()
    agent = start([*APP, "--term-exit", "143"], BOOTSTRAP_READY_TCP=f"127.0.0.1:{port}", BOOTSTRAP_READY_TIMEOUT="1",
                  BOOTSTRAP_EXIT_REMAP="143=0", BOOTSTRAP_TERMINATION_LOG=str(term_log), **extra)
    return agent, term_log, port


def test_a_stop_after_failed_names_the_failure_not_a_clean_stop(start: Start, env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    agent, term_log, port = failing_agent(start, tmp_path)
    agent.wait_line("app ready")
    wait_until(lambda: agent.status().get("state") == "failed", timeout=15)
    agent.wait_line(r"readiness failed: not ready within 1s", stream="err")
    agent.signal(signal.SIGTERM)  # what the kubelet does after the liveness probe fails
    code = agent.wait()
    assert code == 143, "a stop because the app never got ready is not remapped to a clean 0"
    exit_record = records(env["BOOTSTRAP_LOG_ROOT"])[-1]
    assert (exit_record["cause"], exit_record["reason"]) == ("stopped", "readiness-failed"), exit_record
    assert exit_record["exit_code"] == exit_record["raw_exit_code"] == 143
    failure = f"not ready within 1s: tcp 127.0.0.1:{port}: "
    assert exit_record["ready_failure"].startswith(failure), exit_record
    message = term_log.read_text()
    assert message.startswith(f"demo: readiness failed: {failure}"), message
    assert message.rstrip().endswith("; stopped, exit code 143"), message
    assert agent.status()["reason"] == "readiness-failed"


def test_a_stop_of_a_ready_app_is_still_a_clean_stop(start: Start, env: dict[str, str], tmp_path: Path) -> None:
    term_log = tmp_path / "termination-log"
    term_log.write_text("")
    agent = start([*APP, "--term-exit", "143"], BOOTSTRAP_EXIT_REMAP="143=0", BOOTSTRAP_TERMINATION_LOG=str(term_log))
    wait_until(lambda: agent.status().get("state") == "ready", timeout=15)
    agent.signal(signal.SIGTERM)
    assert agent.wait() == 0
    assert records(env["BOOTSTRAP_LOG_ROOT"])[-1]["reason"] == "stopped"
    assert term_log.read_text().startswith("demo: stopped, exit code 143 (remapped to 0)")


def test_exit_on_failed_stops_the_app_without_a_kubelet(start: Start, env: dict[str, str], tmp_path: Path) -> None:
    agent, term_log, port = failing_agent(start, tmp_path, BOOTSTRAP_EXIT_ON_FAILED="1", BOOTSTRAP_DRAIN_SECONDS="0")
    began = time.monotonic()
    code = agent.wait(30)
    assert code == 143 and time.monotonic() - began < 10
    agent.wait_line(r"readiness failed: not ready within 1s: tcp .*; stopping the app \(BOOTSTRAP_EXIT_ON_FAILED=1\)",
                    stream="err")
    agent.wait_line("app signal SIGTERM")
    exit_record = records(env["BOOTSTRAP_LOG_ROOT"])[-1]
    assert (exit_record["cause"], exit_record["reason"]) == ("stopped", "readiness-failed"), exit_record
    assert term_log.read_text().startswith(f"demo: readiness failed: not ready within 1s: tcp 127.0.0.1:{port}")


def test_exit_on_failed_leaves_a_ready_app_alone(start: Start, tmp_path: Path) -> None:
    agent = start(APP, BOOTSTRAP_EXIT_ON_FAILED="1", BOOTSTRAP_READY_TIMEOUT="1")
    wait_until(lambda: agent.status().get("state") == "ready", timeout=15)
    time.sleep(2.5)  # past the deadline: PID 1 looked once, saw ready_at, and stopped looking
    assert agent.proc.poll() is None and agent.status()["state"] == "ready"


def test_a_stop_while_not_live_names_why_not_a_clean_stop(start: Start, env: dict[str, str], tmp_path: Path) -> None:
    """Ready, then not ready longer than BOOTSTRAP_LIVE_WINDOW: the probe ports close the live port
    and say why in RUN_DIR/not-live; the stop that follows (the kubelet's liveness kill) is recorded
    as `liveness-failed`, with the exit code not remapped."""
    term_log = tmp_path / "termination-log"
    term_log.write_text("")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    live = free_port()
    agent = start([*APP, "--term-exit", "143"], BOOTSTRAP_READY_TCP=f"127.0.0.1:{port}", BOOTSTRAP_LIVE_WINDOW="1",
                  BOOTSTRAP_LIVE_PORT=str(live), BOOTSTRAP_EXIT_REMAP="143=0", BOOTSTRAP_TERMINATION_LOG=str(term_log))
    wait_until(lambda: agent.status().get("state") == "ready", timeout=15)
    not_live = Path(agent.run_dir) / "not-live"
    assert not not_live.exists()
    listener.close()  # the app's port goes away: not ready, and after the window not live
    reason = wait_until(lambda: not_live.exists() and not_live.read_text(), timeout=30)
    assert "BOOTSTRAP_LIVE_WINDOW=1" in reason, reason
    agent.signal(signal.SIGTERM)
    assert agent.wait() == 143
    exit_record = records(env["BOOTSTRAP_LOG_ROOT"])[-1]
    assert (exit_record["cause"], exit_record["reason"]) == ("stopped", "liveness-failed"), exit_record
    assert exit_record["live_failure"] == reason and exit_record["exit_code"] == 143
    assert term_log.read_text().startswith(f"demo: liveness failed: {reason}; stopped, exit code 143")
