"""The helpers PID 1 forks, under faults, with the real `bootstrap run`: a kernel without IPv6, a
probe port someone else holds, a flood of connects on the probe ports, an agent killed outside a
container, and HTTP clients that hang up before their answer. Each test's docstring names the
defect it catches."""
from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from typing import Callable

import psutil
import pytest

from tests.support.agent import APP, Agent
from tests.support.net import accepts, free_port, http_code, refused
from tests.support.paths import BOOTSTRAP, REPO
from tests.support.prereq import require_root, require_tool
from tests.support.waiting import wait_until

pytestmark = pytest.mark.fault

NO_IPV6 = str(REPO / "tests" / "support" / "apps" / "no_ipv6.py")
PROBE_TIMEOUT = 1.0  # the kubelet's default timeoutSeconds

Launch = Callable[..., Agent]






@pytest.fixture
def launch(env: dict[str, str]) -> Iterator[Launch]:
    """launch(app_args, wrapper=[], pid1=True, **extra_env) -> a running Agent: `bootstrap run` as
    PID 1 of a new PID namespace (so killing the agent ends everything it started), or as a plain
    child (a subreaper) with pid1=False; `wrapper` runs in front of it. All are killed at teardown."""
    agents: list[Agent] = []

    def _launch(command: list[str], wrapper: tuple[str, ...] = (), pid1: bool = True, **extra: str) -> Agent:
        namespace = [require_tool("unshare"), "--pid", "--fork", "--mount-proc"] if pid1 else []
        if pid1:
            require_root()
        agent = Agent([*wrapper, *namespace, BOOTSTRAP, "run", "--", *command], {**env, **extra}, pid1=False)
        agents.append(agent)
        return agent

    yield _launch
    for agent in agents:
        agent.kill()


def test_probe_ports_open_on_a_kernel_without_ipv6(launch: Launch) -> None:
    """Catches probe ports that never open when socket(AF_INET6) fails (a kernel booted with
    ipv6.disable=1 answers EAFNOSUPPORT): the listener must fall back to IPv4, or every pod with the
    chart's tcpSocket probes fails its startup probe."""
    live, ready = free_port(), free_port()
    agent = launch([*APP], wrapper=(sys.executable, NO_IPV6), BOOTSTRAP_LIVE_PORT=str(live),
                   BOOTSTRAP_READY_PORT=str(ready))
    agent.wait_line(r"^app ready pid=")
    wait_until(lambda: accepts(live) and accepts(ready), timeout=15, interval=0.2)
    assert not [line for line in agent.err if "probe ports" in line]


def test_a_probe_port_in_use_is_one_clear_error(launch: Launch) -> None:
    """Catches a bind error on :: (EADDRINUSE here: another listener holds the port for IPv6) that
    silently falls back to IPv4, so the agent answers IPv4 probes on a port that is not its own;
    and an error that does not name the setting and the port, or is repeated on every retry."""
    live, ready = free_port(), free_port()
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        holder.bind(("::", live))
        holder.listen()
        agent = launch([*APP], BOOTSTRAP_LIVE_PORT=str(live), BOOTSTRAP_READY_PORT=str(ready))
        agent.wait_line(rf"bootstrap: error: probe ports: cannot listen on port {live} .*Address already in use.*"
                        rf"BOOTSTRAP_LIVE_PORT", stream="err")
        wait_until(lambda: accepts(ready), timeout=15, interval=0.2)  # the other port is unharmed
        assert refused(live)  # nobody listens on its IPv4 side: not the agent
        time.sleep(2.5)  # the listener is retried every second: the error stays one line
        assert len([line for line in agent.err if f"port {live}" in line]) == 1


class Flood:
    """Threads that open connections to a port as fast as they can and never send anything; each
    keeps its last few hundred open, then closes the oldest."""

    def __init__(self, port: int, threads: int = 4, keep: int = 200) -> None:
        self.port, self.keep = port, keep
        self.stop = threading.Event()
        self.connects = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def run(self) -> None:
        held: list[socket.socket] = []
        try:
            while not self.stop.is_set():
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.connect_ex(("127.0.0.1", self.port))
                held.append(sock)
                self.connects += 1
                if len(held) > self.keep:
                    held.pop(0).close()
        finally:
            for sock in held:
                sock.close()

    def end(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def test_probes_pass_under_a_connect_flood(launch: Launch) -> None:
    """Catches a listen backlog too small for a burst of connects (it was one): while a client
    floods the probe ports with connects, the kernel drops the kubelet's SYN and its probe times
    out, so any client on the pod network could fail readiness and liveness at will."""
    live, ready = free_port(), free_port()
    agent = launch([*APP], BOOTSTRAP_LIVE_PORT=str(live), BOOTSTRAP_READY_PORT=str(ready))
    wait_until(lambda: accepts(live) and accepts(ready), timeout=15, interval=0.2)
    floods = [Flood(live), Flood(ready)]
    try:
        wait_until(lambda: all(f.connects > 1000 for f in floods), timeout=15)
        failed = [port for _ in range(50) for port in (live, ready) if not accepts(port)]
    finally:
        for flood in floods:
            flood.end()
    assert failed == []
    assert agent.proc.poll() is None


def running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever adopted it)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_helpers_end_with_a_killed_agent(launch: Launch) -> None:
    """Catches helpers that outlive their agent: outside a container (bootstrap as a subreaper), a
    SIGKILLed agent left its readiness checker and HTTP endpoint running forever, reparented to
    init, the checker still writing status.json for an agent that is gone."""
    agent = launch([*APP], pid1=False, BOOTSTRAP_HTTP_PORT=str(free_port()))
    app = int(agent.wait_line(r"^app ready pid=(\d+)").group(1))

    def both() -> list[psutil.Process]:
        found = agent.helpers()  # the readiness checker and the HTTP endpoint
        return found if len(found) == 2 else []

    helpers = wait_until(both, timeout=15)
    try:
        agent.proc.kill()
        agent.wait(10)
        wait_until(lambda: not [h for h in helpers if running(h)], timeout=3, interval=0.05)
    finally:
        for helper in helpers:
            if running(helper):
                helper.kill()
        try:
            os.kill(app, signal.SIGKILL)  # the app is not a helper: it outlives a killed agent here
        except ProcessLookupError:
            pass


def hang_up_early(port: int, path: str, timeout: float = 5.0) -> None:
    """A client that sends its request and resets the connection before the answer can come."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST


def test_http_connects_in_a_burst_are_all_taken(launch: Launch) -> None:
    """Catches the HTTP endpoint's listen backlog of 5 (socketserver's default): a client that
    connects faster than the helper starts request threads overflows it, the kernel drops the next
    SYN, and an httpGet probe arriving then waits a second for the retransmit: it times out."""
    port = free_port()
    launch([*APP], BOOTSTRAP_HTTP_PORT=str(port))
    wait_until(lambda: http_code(port, "/ready") is not None, timeout=15)
    for _ in range(300):
        hang_up_early(port, "/ready", timeout=PROBE_TIMEOUT)


def test_http_clients_that_hang_up_early_cost_one_line(launch: Launch) -> None:
    """Catches the HTTP endpoint printing a multi-line traceback (BrokenPipeError,
    ConnectionResetError from socketserver's handle_error) into the container log for every client
    that goes away before its answer is written: hundreds of them flooded the log."""
    port = free_port()
    agent = launch([*APP], BOOTSTRAP_HTTP_PORT=str(port))
    wait_until(lambda: http_code(port, "/metrics") == 200, timeout=15)
    before = len(agent.err)
    for n in range(350):
        hang_up_early(port, "/metrics" if n % 10 == 0 else "/status")
    assert http_code(port, "/ready") in (200, 503)  # still answering
    agent.wait_line("http endpoint: 1 request", stream="err")
    time.sleep(1)  # anything more the helper wrote has reached agent.err by now
    lines = agent.err[before:]
    assert not [line for line in lines if "Traceback" in line]
    assert len(lines) == 1, lines  # the first one, with its count; the next can come a minute later
    assert "http endpoint: 1 request(s) ended in an error, most often a client that went away" in lines[0]
