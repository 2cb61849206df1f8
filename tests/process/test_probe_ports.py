"""The probe-ports helper with real processes: bootstrap as PID 1 of a PID namespace, the kubelet's
tcpSocket probe played by a TCP connect from the host."""
from __future__ import annotations

import errno
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bootstrap.helpers import probe_ports
from tests.support.agent import APP, Agent
from tests.support.apptree import app_tree
from tests.support.net import accepts, free_port, refused
from tests.support.paths import BOOTSTRAP
from tests.support.waiting import wait_until

LIVE, READY = 23101, 23102  # this tier's ports (23000-23999)






def poll(condition, timeout: float = 15):  # type: ignore[no-untyped-def]
    """Probes at about the kubelet's pace."""
    return wait_until(condition, timeout=timeout, interval=0.2)


@pytest.fixture()
def start(tmp_path: Path) -> Iterator[object]:
    agents: list[Agent] = []

    def run(**extra: str) -> Agent:
        env = {**app_tree(tmp_path), "BOOTSTRAP_LIVE_PORT": str(LIVE), "BOOTSTRAP_READY_PORT": str(READY), **extra}
        agent = Agent([BOOTSTRAP, "run", "--", *APP], env, pid1=True)
        agents.append(agent)
        return agent

    yield run
    for agent in agents:
        agent.kill()


def checker(agent: Agent) -> psutil.Process:
    """The readiness checker, whose thread answers on the probe ports."""
    counters = wait_until(lambda: agent.counters().get("helper_pids", {}).get("readiness checker") and agent.counters())
    return psutil.Process(_host_pid(agent, counters["helper_pids"]["readiness checker"]))


def _host_pid(agent: Agent, ns_pid: int) -> int:
    """The host pid of a process the agent knows by its pid in the PID namespace."""
    for proc in psutil.Process(agent.pid).children():
        with open(f"/proc/{proc.pid}/status") as fh:
            nspid = next(line for line in fh if line.startswith("NSpid:")).split()
        if int(nspid[-1]) == ns_pid:
            return proc.pid
    raise AssertionError(f"no child of the agent has pid {ns_pid} in its namespace")


def test_ready_port_follows_the_ready_file_and_live_opens_with_the_app(start, tmp_path: Path) -> None:
    flag = tmp_path / "ready-flag"
    agent = start(BOOTSTRAP_READY_CMD=f"test -f {flag}")
    poll(lambda: accepts(LIVE), timeout=15)  # startup: passes once the app runs, before ready
    assert agent.status()["state"] == "starting"
    assert refused(READY)
    flag.touch()
    poll(lambda: accepts(READY), timeout=15)
    assert (agent.run_dir / "ready").exists()
    # the checks fail again (period 1 s): the ready port closes with the ready file
    flag.unlink()
    poll(lambda: refused(READY))
    assert agent.status()["state"] == "not_ready" and not (agent.run_dir / "ready").exists()
    assert accepts(LIVE, timeout=3)  # not_ready for less than BOOTSTRAP_LIVE_WINDOW is still live


def test_stopped_app_fails_liveness_until_continued(start) -> None:
    agent = start()
    poll(lambda: accepts(READY), timeout=15)
    app = _host_pid(agent, agent.status()["pid"])
    os.kill(app, signal.SIGSTOP)
    try:
        # the liveness connection that finds the app stopped still passes; the next ones are refused
        poll(lambda: refused(LIVE), timeout=10)
        agent.wait_line(r"not live: the app \(pid \d+\) is stopped", stream="err")
    finally:
        os.kill(app, signal.SIGCONT)
    poll(lambda: accepts(LIVE), timeout=10)


def test_failed_startup_deadline_fails_liveness(start, tmp_path: Path) -> None:
    agent = start(BOOTSTRAP_READY_CMD=f"test -f {tmp_path / 'never'}", BOOTSTRAP_READY_TIMEOUT="1")
    wait_until(lambda: agent.status().get("state") == "failed", timeout=15)
    poll(lambda: refused(LIVE), timeout=10)
    assert refused(READY)


def test_not_ready_longer_than_the_window_fails_liveness(start, tmp_path: Path) -> None:
    flag = tmp_path / "ready-flag"
    flag.touch()
    agent = start(BOOTSTRAP_READY_CMD=f"test -f {flag}", BOOTSTRAP_READY_PERIOD="0.2", BOOTSTRAP_LIVE_WINDOW="2")
    poll(lambda: accepts(READY), timeout=15)
    flag.unlink()
    wait_until(lambda: agent.status().get("state") == "not_ready", timeout=15)
    assert accepts(LIVE, timeout=3)
    poll(lambda: refused(LIVE), timeout=10)
    agent.wait_line(r"readiness checks have failed for \d+s", stream="err")
    flag.touch()  # the checks pass again: live again
    poll(lambda: accepts(LIVE) and accepts(READY))


def test_hung_checker_is_replaced_with_its_ports(start) -> None:
    """A hung checker (SIGSTOP: no heartbeat) is killed by PID 1 after BOOTSTRAP_CHECKER_TIMEOUT;
    its listeners go with it and the new checker's answer. (While it is hung the kernel still
    completes the handshakes: the backlog holds a flood of connects, see tests/fault.)"""
    agent = start(BOOTSTRAP_CHECKER_TIMEOUT="1")
    poll(lambda: accepts(READY), timeout=15)
    helper = checker(agent)
    helper.suspend()
    try:
        wait_until(lambda: agent.counters().get("helper_restarts", {}).get("readiness checker") == 1, timeout=15)
        agent.wait_line("readiness checker gave no heartbeat", stream="err")
        wait_until(lambda: not helper.is_running() or helper.status() == psutil.STATUS_ZOMBIE, timeout=5)
    finally:
        if helper.is_running():
            helper.resume()
    poll(lambda: accepts(LIVE) and accepts(READY))


def test_stop_closes_the_ports_at_once(start) -> None:
    agent = start(BOOTSTRAP_DRAIN_SECONDS="30")
    poll(lambda: accepts(READY), timeout=15)
    agent.signal(signal.SIGTERM)
    poll(lambda: refused(READY), timeout=5)
    # PID 1 ends the checker first (so it cannot overwrite the state), then writes `stopping`.
    wait_until(lambda: agent.status()["state"] == "stopping", timeout=5)
    # The checker is ended at once: the live port goes too (the kubelet no longer probes liveness
    # of a pod it is deleting), while the app still drains.
    assert refused(LIVE)
    assert agent.proc.poll() is None
    agent.signal(signal.SIGTERM)  # a second TERM ends the drain
    assert agent.wait(30) == 128 + signal.SIGTERM


def test_dead_checker_is_restarted_with_its_ports(start) -> None:
    agent = start()
    poll(lambda: accepts(READY), timeout=15)
    checker(agent).kill()
    wait_until(lambda: agent.counters().get("helper_restarts", {}).get("readiness checker") == 1, timeout=15)
    poll(lambda: accepts(LIVE) and accepts(READY))


def test_ports_must_differ(tmp_path: Path) -> None:
    import subprocess

    env = {**app_tree(tmp_path), "BOOTSTRAP_LIVE_PORT": str(LIVE), "BOOTSTRAP_READY_PORT": str(LIVE)}
    result = subprocess.run([BOOTSTRAP, "run", "--", "/bin/true"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        f"bootstrap: error: BOOTSTRAP_READY_PORT={LIVE} is also BOOTSTRAP_LIVE_PORT: "
        "give each of the agent's listeners a port of its own"]


@pytest.mark.parametrize(("code", "falls_back"), [(errno.EAFNOSUPPORT, True), (errno.EADDRNOTAVAIL, True),
                                                  (errno.EADDRINUSE, False), (errno.EACCES, False)])
def test_only_a_kernel_without_ipv6_falls_back_to_ipv4(monkeypatch: pytest.MonkeyPatch, code: int,
                                                        falls_back: bool) -> None:
    """`listen` with binding on :: failing with `code`: IPv4 alone when IPv6 is unavailable (no
    IPv6 in the kernel, no address for ::); any other error is the caller's to report."""
    real = probe_ports.bind

    def bind(family: int, address: tuple[str, int]) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(code, os.strerror(code))
        return real(family, address)

    monkeypatch.setattr(probe_ports, "bind", bind)
    port = free_port()
    if falls_back:
        with probe_ports.listen(port) as sock:
            assert sock.family == socket.AF_INET and sock.getsockname() == ("0.0.0.0", port)
            assert accepts(port)
    else:
        with pytest.raises(OSError) as raised:
            probe_ports.listen(port)
        assert raised.value.errno == code
