"""The supervisor with real processes: bootstrap as PID 1 of a PID namespace, and as a subreaper."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import psutil
import pytest

from tests.support.agent import APP, Agent, records
from tests.support.apptree import app_tree
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_root
from tests.support.waiting import wait_until

Start = Callable[..., Agent]
MODES = pytest.mark.parametrize("pid1", [True, False], ids=["pid1", "subreaper"])


@pytest.fixture
def start(start: Start) -> Iterator[Start]:
    """The tier's `start`, ending every agent's whole tree at teardown: a subreaper agent killed
    alone leaves its app (a session of its own) running, adopted by init."""
    agents: list[Agent] = []

    def _start(*args: object, **kwargs: object) -> Agent:
        agent = start(*args, **kwargs)
        agents.append(agent)
        return agent

    yield _start
    for agent in agents:
        try:
            tree = psutil.Process(agent.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        agent.kill()
        for proc in tree:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


def run(env: dict[str, str], command: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BOOTSTRAP, "run", "--", *command], env={**env, **extra}, capture_output=True,
                          text=True, timeout=60)


def test_all_exit_codes_pass_through(tmp_path: Path) -> None:
    def codes(worker: int) -> dict[int, int]:
        env = app_tree(tmp_path / f"worker{worker}")  # one container's tree per worker, as in real life
        return {n: run(env, ["/bin/sh", "-c", f"exit {n}"]).returncode for n in range(worker, 256, 4)}

    results: dict[int, int] = {}
    with ThreadPoolExecutor(4) as pool:
        for part in pool.map(codes, range(4)):
            results.update(part)
    assert results == {n: n for n in range(256)}


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT, signal.SIGKILL,
                                 signal.SIGSEGV, signal.SIGPIPE, signal.SIGTERM, signal.SIGUSR1])
def test_death_by_signal_is_128_plus_n(env: dict[str, str], sig: signal.Signals) -> None:
    result = run(env, ["/bin/sh", "-c", f"kill -{sig.name.removeprefix('SIG')} $$"])
    assert result.returncode == 128 + sig
    exit_record = records(env["BOOTSTRAP_LOG_ROOT"])[-1]
    assert exit_record["cause"] == "signal" and exit_record["raw_exit_code"] == 128 + sig


def test_exit_remap_applies_to_the_app_code_only(env: dict[str, str]) -> None:
    assert run(env, ["/bin/sh", "-c", "kill -TERM $$"], BOOTSTRAP_EXIT_REMAP="143=0,3=4").returncode == 0
    assert run(env, ["/bin/sh", "-c", "exit 3"], BOOTSTRAP_EXIT_REMAP="143=0,3=4").returncode == 4
    # a setup error is not remapped
    assert run(env, ["/bin/true"], BOOTSTRAP_EXIT_REMAP="78=0", APP_ENV="nope").returncode == 78
    exit_record = records(env["BOOTSTRAP_LOG_ROOT"])[-1]
    assert (exit_record["exit_code"], exit_record["raw_exit_code"]) == (4, 3)


def test_command_not_found_and_not_executable(env: dict[str, str], tmp_path: Path) -> None:
    missing = run(env, ["no-such-command-xyz"])
    assert missing.returncode == 127
    assert missing.stderr.count("bootstrap: error:") == 1 and "no-such-command-xyz" in missing.stderr
    script = tmp_path / "not-exec.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    denied = run(env, [str(script)])
    assert denied.returncode == 126 and "chmod +x" in denied.stderr


def test_run_without_command_or_start_is_a_usage_error(env: dict[str, str]) -> None:
    result = subprocess.run([BOOTSTRAP, "run"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 64 and result.stderr.startswith("bootstrap: error:")


def test_start_from_bootstrap_yaml(env: dict[str, str], tmp_path: Path) -> None:
    Path(env["BOOTSTRAP_CONFIG"]).write_text("start: \"/bin/sh -c 'exit 7'\"\n")
    result = subprocess.run([BOOTSTRAP, "run"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 7


@MODES
def test_app_leads_its_group_and_its_parent_is_bootstrap(start: Start, pid1: bool) -> None:
    agent = start([*APP], pid1=pid1)
    line = agent.wait_line(r"app ready pid=(\d+) pgid=(\d+) ppid=(\d+)")
    pid, pgid, ppid = map(int, line.groups())
    assert pid == pgid
    assert ppid == (1 if pid1 else agent.pid)
    wait_until(lambda: agent.status().get("state") == "ready")
    assert agent.status()["supervisor_pid"] == (1 if pid1 else agent.pid)


@MODES
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH,
                                 signal.SIGCONT, signal.SIGALRM, signal.SIGURG, signal.SIGRTMIN])
def test_signals_reach_the_app_and_its_group(start: Start, pid1: bool, sig: int) -> None:
    agent = start([*APP, "--grandchild"], pid1=pid1)
    agent.wait_line("app ready")
    agent.wait_line("grandchild ready")
    agent.signal(sig)
    name = signal.Signals(sig).name
    agent.wait_line(f"^app signal {name}$")
    agent.wait_line(f"^grandchild signal {name}$")
    wait_until(lambda: agent.counters().get("signals_forwarded", {}).get(name) == 1)


@MODES
def test_orphans_are_reaped(start: Start, pid1: bool) -> None:
    agent = start([*APP, "--orphans", "5"], pid1=pid1)
    orphans = [int(p) for p in agent.wait_line(r"^orphans (.*)$").group(1).split()]
    agent.wait_line("app ready")
    bootstrap = psutil.Process(agent.pid)

    def orphans_gone() -> bool:
        if not pid1 and any(psutil.pid_exists(p) for p in orphans):
            return False
        # Inside the namespace the printed pids are not ours to look up; count instead:
        # only the app and the checker may remain, and nothing may be left a zombie.
        kids = bootstrap.children()
        return len(kids) <= 2 and not [p for p in bootstrap.children(recursive=True)
                                       if p.status() == psutil.STATUS_ZOMBIE]

    wait_until(orphans_gone, timeout=10)
    wait_until(lambda: agent.counters().get("zombies_reaped") == 5)


@MODES
def test_stop_drains_then_signals_and_records(start: Start, pid1: bool, env: dict[str, str]) -> None:
    agent = start([*APP], pid1=pid1, BOOTSTRAP_DRAIN_SECONDS="1")
    agent.wait_line("app ready")
    wait_until(lambda: (agent.run_dir / "ready").exists())
    sent = time.monotonic()
    agent.signal(signal.SIGTERM)
    wait_until(lambda: agent.status().get("state") == "stopping", timeout=5)
    assert not (agent.run_dir / "ready").exists()
    agent.wait_line("^app signal SIGTERM$")
    assert time.monotonic() - sent >= 1.0  # the drain came first
    assert agent.wait() == 143
    assert agent.status()["state"] == "exited" and agent.status()["exit_code"] == 143
    start_record, exit_record = records(env["BOOTSTRAP_LOG_ROOT"])[-2:]
    assert start_record["event"] == "start" and exit_record["event"] == "exit"
    assert exit_record["cause"] == "stopped" and exit_record["exit_code"] == 143
    for key in ("time", "app", "env", "ip", "pod", "node", "image", "pid"):
        assert key in exit_record
    assert exit_record["ip"] == "10.0.0.7" and exit_record["env"] == "qa"


def test_stop_signal_setting_is_sent_instead_of_term(start: Start) -> None:
    agent = start([*APP], BOOTSTRAP_STOP_SIGNAL="SIGUSR1", BOOTSTRAP_STOP_TIMEOUT="1")
    agent.wait_line("app ready")
    agent.signal(signal.SIGTERM)
    agent.wait_line("^app signal SIGUSR1$")
    assert "app signal SIGTERM" not in agent.out
    assert agent.wait() == 137  # it ignores USR1 (prints it), so it is killed at the timeout


def test_term_ignoring_app_is_killed_at_the_timeout_after_a_thread_dump(start: Start, env: dict[str, str]) -> None:
    agent = start([*APP, "--ignore-term"], BOOTSTRAP_STOP_TIMEOUT="2", BOOTSTRAP_THREAD_DUMP="1")
    agent.wait_line("app ready")
    agent.signal(signal.SIGTERM)
    agent.wait_line("^app signal SIGTERM$")
    term_seen = time.monotonic()
    agent.wait_line("^app signal SIGQUIT$")
    quit_seen = time.monotonic()
    assert agent.wait() == 137
    killed = time.monotonic()
    assert 0.5 <= quit_seen - term_seen <= 1.8  # about 1 s before the 2 s timeout
    assert killed - term_seen >= 1.5
    assert records(env["BOOTSTRAP_LOG_ROOT"])[-1]["cause"] == "killed-after-timeout"


def test_app_exiting_on_its_own_takes_its_group_down(start: Start) -> None:
    agent = start(["/bin/sh", "-c", f"{APP[0]} {APP[1]} --name grandchild & sleep 0.5; exit 3"])
    agent.wait_line("grandchild ready")
    assert agent.wait() == 3
    agent.wait_line("^grandchild signal SIGTERM$")


def test_app_group_member_ignoring_term_is_killed_after_grace(start: Start) -> None:
    agent = start(["/bin/sh", "-c", f"{APP[0]} {APP[1]} --name grandchild --ignore-term & sleep 0.5; exit 5"])
    agent.wait_line("grandchild ready")
    began = time.monotonic()
    assert agent.wait() == 5
    assert 1.5 <= time.monotonic() - began <= 10  # TERM, the 2 s grace, KILL; bootstrap waited for it


def test_termination_log_gets_the_cause(env: dict[str, str], tmp_path: Path) -> None:
    term_log = tmp_path / "termination-log"
    term_log.write_text("")
    run(env, ["/bin/sh", "-c", "exit 9"], BOOTSTRAP_TERMINATION_LOG=str(term_log))
    assert "exited, exit code 9" in term_log.read_text()


def test_app_runs_as_bootstrap_user(env: dict[str, str], tmp_path: Path) -> None:
    require_root()
    result = run(env, ["/bin/sh", "-c", "echo $(id -u):$(id -g):$USER"], BOOTSTRAP_USER="nobody")
    assert result.returncode == 0 and result.stdout.strip() == "65534:65534:nobody"
    log_dir = Path(env["BOOTSTRAP_LOG_ROOT"]) / "demo" / "10.0.0.7"
    assert log_dir.stat().st_uid == 65534
    numeric = run(env, ["/bin/sh", "-c", "id -u; id -g"], BOOTSTRAP_USER="4321:4322")
    assert numeric.stdout.split() == ["4321", "4322"]
    unknown = run(env, ["/bin/true"], BOOTSTRAP_USER="no-such-user")
    assert unknown.returncode == 78 and "BOOTSTRAP_USER" in unknown.stderr


def test_output_burst_arrives_complete(env: dict[str, str], tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as o, err.open("wb") as e:
        code = subprocess.run([BOOTSTRAP, "run", "--", *APP, "--burst", "100000"], env=env, stdout=o, stderr=e,
                              timeout=120).returncode
    assert code == 0
    out_lines = out.read_text().splitlines()
    err_lines = [line for line in err.read_text().splitlines() if not line.startswith("bootstrap:")]
    assert out_lines == [f"out {n}" for n in range(100000)]
    assert err_lines == [f"err {n}" for n in range(100000)]


@MODES
def test_ready_without_checks_then_probes(start: Start, pid1: bool, env: dict[str, str]) -> None:
    agent = start([*APP], pid1=pid1)
    agent.wait_line("app ready")
    wait_until(lambda: (agent.run_dir / "ready").exists())
    status = agent.status()
    assert status["state"] == "ready" and status["ready_at"] and status["supervisor_pid"]
    probe_env = {"PATH": env["PATH"], "BOOTSTRAP_RUN_DIR": env["BOOTSTRAP_RUN_DIR"]}
    if not pid1:  # pids in status.json are the namespace's, so liveness is only checkable from outside here
        for flag in ([], ["--live"], ["--startup"]):
            assert subprocess.run([BOOTSTRAP, "probe", *flag], env=probe_env).returncode == 0
    assert subprocess.run(["cat", str(agent.run_dir / "ready")]).returncode == 0
    shown = subprocess.run([BOOTSTRAP, "status"], env=probe_env, capture_output=True, text=True)
    assert json.loads(shown.stdout)["state"] == "ready"


def test_killed_checker_comes_back_and_app_keeps_running(start: Start) -> None:
    agent = start([*APP], pid1=False)
    app_pid = int(agent.wait_line(r"app ready pid=(\d+)").group(1))
    checker = wait_until(lambda: agent.helpers())[0]
    checker.kill()
    wait_until(lambda: [p for p in agent.helpers() if p.pid != checker.pid], timeout=10)
    assert psutil.Process(app_pid).is_running()
    assert agent.proc.poll() is None
    assert "readiness checker exited" in "\n".join(agent.err)
    wait_until(lambda: agent.counters()["helper_restarts"]["readiness checker"] == 1)


def test_hung_checker_is_replaced(start: Start) -> None:
    agent = start([*APP], pid1=False, BOOTSTRAP_CHECKER_TIMEOUT="1")
    agent.wait_line("app ready")
    checker = wait_until(lambda: agent.helpers())[0]
    checker.suspend()  # SIGSTOP: alive but silent
    wait_until(lambda: [p for p in agent.helpers() if p.pid != checker.pid], timeout=10)
    agent.wait_line("gave no heartbeat", stream="err")


def test_second_term_cuts_the_drain_short(start: Start) -> None:
    agent = start([*APP], BOOTSTRAP_DRAIN_SECONDS="60")
    agent.wait_line("app ready")
    agent.signal(signal.SIGTERM)
    wait_until(lambda: agent.status().get("state") == "stopping")
    agent.signal(signal.SIGTERM)
    agent.wait_line("^app signal SIGTERM$", timeout=10)
    assert agent.wait() == 143


def test_stale_ready_marker_is_gone_before_the_app_starts(env: dict[str, str]) -> None:
    run_dir = Path(env["BOOTSTRAP_RUN_DIR"])
    run_dir.mkdir()
    (run_dir / "ready").write_text("")  # left by an earlier run in this container
    result = run(env, ["/bin/sh", "-c", f"test -e {run_dir}/ready && exit 1; exit 0"])
    assert result.returncode == 0
