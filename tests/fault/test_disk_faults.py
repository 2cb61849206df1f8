"""PID 1 on full and read-only disks: a failed side write (journal, status.json, supervisor.json)
is one log line, never a dead PID 1; probes stay truthful; writes are retried once space is back;
the exit code and the termination message stay right; no temporary file is left behind."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.fault.conftest import ENOSPC_TEXT, EROFS_TEXT, FaultStart, fill_up
from tests.support.agent import APP
from tests.support.waiting import wait_until

pytestmark = pytest.mark.fault

TERM_EXIT = 7  # the app exits with this on SIGTERM: a code only the app can have produced
JOURNAL = "demo/10.0.0.7/.bootstrap.jsonl"  # under the log root, for APP_NAME=demo and POD_IP=10.0.0.7


def journal_lines(text: str) -> list[dict[str, object]]:
    """Every line must be whole JSON: a half-written line fails here."""
    assert text == "" or text.endswith("\n"), f"journal ends in a partial line: {text[-80:]!r}"
    return [json.loads(line) for line in text.splitlines()]


def earlier_record(size: int) -> str:
    """A journal line from an earlier run, padded to exactly `size` bytes with its newline."""
    line = json.dumps({"event": "exit", "app": "demo", "pid": 41, "exit_code": 0, "pad": ""})
    padded = json.dumps({"event": "exit", "app": "demo", "pid": 41, "exit_code": 0,
                         "pad": "x" * (size - len(line) - 1)})
    assert len(padded) + 1 == size
    return padded + "\n"


def test_full_log_root_when_the_start_record_is_written(fault_start: FaultStart, env: dict[str, str]) -> None:
    """Catches an agent that lets ENOSPC from the start record escape (PID 1 dies and takes the
    app with it), that logs the failure on every loop turn, or that never writes the record once
    space is back."""
    logs = env["BOOTSTRAP_LOG_ROOT"]
    agent = fault_start([*APP, "--term-exit", str(TERM_EXIT)], tmpfs={logs: "256k"}, fill={logs: 0})
    agent.wait_line(r"^app ready pid=")
    agent.wait_line(rf"bootstrap: warning: cannot write the start/exit journal .*{ENOSPC_TEXT}.*keeps running",
                    stream="err")
    wait_until(lambda: agent.status().get("state") == "ready", timeout=30)
    assert agent.proc.poll() is None
    journal = agent.view(f"{logs}/{JOURNAL}")
    assert journal.read_text() == ""  # nothing, not half a line

    (agent.view(logs) / ".filler").unlink()  # space is back: the next loop turn writes the record
    agent.wait_line(r"bootstrap: info: the start/exit journal .* is written again", stream="err")
    assert [r["event"] for r in journal_lines(journal.read_text())] == ["start"]

    agent.signal(signal.SIGTERM)
    assert agent.wait() == TERM_EXIT
    assert len(agent.err_lines("cannot write the start/exit journal")) == 1
    left = agent.copy_out / "0" / JOURNAL
    assert [r["event"] for r in journal_lines(left.read_text())] == ["start", "exit"]


def test_journal_lines_are_whole_on_a_nearly_full_page(fault_start: FaultStart, env: dict[str, str],
                                                       tmp_path: Path) -> None:
    """Catches an agent that appends with one unchecked os.write: on a full tmpfs whose last journal
    page has 40 bytes left, that write is short and leaves half a JSON line. Also catches one that
    lets the failed exit record change the exit code or skip the termination message."""
    logs = env["BOOTSTRAP_LOG_ROOT"]
    earlier = earlier_record(4096 - 40)
    (Path(logs) / JOURNAL).parent.mkdir(parents=True)
    (Path(logs) / JOURNAL).write_text(earlier)
    agent = fault_start([*APP, "--term-exit", str(TERM_EXIT)], tmpfs={logs: "256k"}, fill={logs: 0})
    agent.wait_line(r"^app ready pid=")
    agent.wait_line(rf"cannot write the start/exit journal .*{ENOSPC_TEXT}", stream="err")
    assert agent.view(f"{logs}/{JOURNAL}").read_text() == earlier
    agent.signal(signal.SIGTERM)
    assert agent.wait() == TERM_EXIT
    assert (agent.copy_out / "0" / JOURNAL).read_text() == earlier  # neither record, and no half of one
    assert (tmp_path / "termination-log").read_text() == f"demo: stopped, exit code {TERM_EXIT}\n"
    assert json.loads((Path(env["BOOTSTRAP_RUN_DIR"]) / "status.json").read_text())["exit_code"] == TERM_EXIT


def test_read_only_log_dir_from_an_earlier_run(fault_start: FaultStart, env: dict[str, str], tmp_path: Path) -> None:
    """Catches an agent whose PID 1 dies of EROFS on the journal (a log dir an earlier run left
    read-only), or that changes the app's exit code because its records failed."""
    log_dir = Path(env["BOOTSTRAP_LOG_ROOT"]) / JOURNAL
    log_dir.parent.mkdir(parents=True)
    earlier = earlier_record(200)
    log_dir.write_text(earlier)
    agent = fault_start([*APP, "--term-exit", str(TERM_EXIT)], read_only=[str(log_dir.parent)])
    agent.wait_line(r"^app ready pid=")
    agent.wait_line(rf"bootstrap: warning: cannot write the start/exit journal .*{EROFS_TEXT}", stream="err")
    agent.signal(signal.SIGUSR1)
    agent.wait_line(r"^app signal SIGUSR1")
    agent.signal(signal.SIGTERM)
    assert agent.wait() == TERM_EXIT
    assert log_dir.read_text() == earlier
    assert len(agent.err_lines("cannot write the start/exit journal")) == 1
    assert (tmp_path / "termination-log").read_text() == f"demo: stopped, exit code {TERM_EXIT}\n"
    assert not [line for line in agent.err if "Traceback" in line]


def test_run_dir_fills_up_then_a_forwarded_signal(fault_start: FaultStart, env: dict[str, str]) -> None:
    """Catches an agent whose PID 1 dies when a forwarded signal makes it rewrite supervisor.json on
    a full run dir, that leaves supervisor.json.tmp-N files behind, that logs every failed retry,
    or that never writes the counters again once space is back."""
    run = env["BOOTSTRAP_RUN_DIR"]
    agent = fault_start([*APP, "--term-exit", str(TERM_EXIT)], tmpfs={run: "256k"})
    agent.wait_line(r"^app ready pid=")
    wait_until(lambda: agent.view(f"{run}/ready").exists(), timeout=30)
    filler = fill_up(agent.view(run))

    agent.signal(signal.SIGUSR1)
    agent.wait_line(r"^app signal SIGUSR1")
    agent.wait_line(rf"bootstrap: warning: cannot write .*/supervisor.json: {ENOSPC_TEXT}", stream="err")
    agent.signal(signal.SIGUSR2)
    agent.wait_line(r"^app signal SIGUSR2")
    assert agent.proc.poll() is None
    assert agent.probe() == 0  # the app is still ready: a full disk does not make it unready
    assert not [p.name for p in agent.view(run).iterdir() if ".tmp-" in p.name]

    filler.unlink()
    wait_until(lambda: agent.counters().get("signals_forwarded") == {"SIGUSR1": 1, "SIGUSR2": 1}, timeout=30)
    agent.signal(signal.SIGTERM)
    assert agent.wait() == TERM_EXIT
    assert len(agent.err_lines("supervisor.json")) == 2  # the warning, and "is written again"
    assert not [p.name for p in (agent.copy_out / "0").iterdir() if ".tmp-" in p.name]


def test_full_run_dir_at_stop_withdraws_ready_and_retries_the_status(fault_start: FaultStart,
                                                                      env: dict[str, str]) -> None:
    """Catches an agent that writes status.json before removing the ready marker (a full disk then
    leaves `ready` passing during the drain), whose PID 1 dies of the failed status write, or
    that never says `stopping` once space is back."""
    run = env["BOOTSTRAP_RUN_DIR"]
    agent = fault_start([*APP, "--term-exit", str(TERM_EXIT)], tmpfs={run: "256k"}, BOOTSTRAP_DRAIN_SECONDS="600")
    agent.wait_line(r"^app ready pid=")
    wait_until(lambda: agent.view(f"{run}/ready").exists(), timeout=30)
    filler = fill_up(agent.view(run))
    agent.signal(signal.SIGTERM)
    agent.wait_line(rf"bootstrap: warning: cannot write .*/status.json: {ENOSPC_TEXT}", stream="err")
    assert not agent.view(f"{run}/ready").exists()
    assert agent.probe() == 1
    assert agent.proc.poll() is None

    filler.unlink()
    wait_until(lambda: agent.status().get("state") == "stopping", timeout=30)
    agent.signal(signal.SIGTERM)  # a second TERM ends the drain
    assert agent.wait() == TERM_EXIT
    assert json.loads((agent.copy_out / "0" / "status.json").read_text())["exit_code"] == TERM_EXIT


def test_run_dir_turns_read_only_while_the_app_runs(fault_start: FaultStart, env: dict[str, str],
                                                    tmp_path: Path) -> None:
    """Catches an agent whose PID 1 dies of EROFS on supervisor.json (a forwarded signal) or on
    status.json (the stop), or whose exit code or termination message depend on those writes."""
    run = env["BOOTSTRAP_RUN_DIR"]
    agent = fault_start([*APP, "--term-exit", str(TERM_EXIT)], tmpfs={run: "256k"})
    agent.wait_line(r"^app ready pid=")
    wait_until(lambda: agent.view(f"{run}/ready").exists(), timeout=30)
    agent.remount_read_only(run)
    agent.signal(signal.SIGHUP)
    agent.wait_line(r"^app signal SIGHUP")
    agent.wait_line(rf"cannot write .*/supervisor.json: {EROFS_TEXT}", stream="err")
    agent.signal(signal.SIGTERM)
    assert agent.wait() == TERM_EXIT
    assert agent.err_lines("cannot write") and not [line for line in agent.err if "Traceback" in line]
    assert (tmp_path / "termination-log").read_text() == f"demo: stopped, exit code {TERM_EXIT}\n"


def test_read_only_run_dir_at_start(fault_start: FaultStart, env: dict[str, str]) -> None:
    """Catches an agent that starts the app on a run dir it cannot write (no probe could ever pass)
    or that dies with a traceback instead of one error line and exit 78."""
    run = Path(env["BOOTSTRAP_RUN_DIR"])
    run.mkdir()
    agent = fault_start([*APP], read_only=[str(run)])
    assert agent.wait() == 78
    assert agent.out == []  # the app never started
    assert len(agent.err) == 1 and agent.err[0].startswith(f"bootstrap: error: run dir {run} is not writable")
