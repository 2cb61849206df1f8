"""The agent's HTTP endpoint on the real `bootstrap run`: probe codes before ready, after ready and
while stopping; /status; a probe that keeps answering while the app burns every CPU."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Callable

import pytest

from tests.support.agent import APP, Agent
from tests.support.net import free_port, http_code, http_get
from tests.support.waiting import wait_until

Start = Callable[..., Agent]
PROBES = ("/ready", "/live", "/startup")


def codes(port: int) -> tuple[int | None, ...]:
    return tuple(http_code(port, p) for p in PROBES)


@pytest.mark.parametrize("pid1", [True, False], ids=["pid1", "subreaper"])
def test_probe_codes_through_the_life_of_the_app(start: Start, tmp_path: Path, pid1: bool) -> None:
    port, flag = free_port(), tmp_path / "go"
    agent = start([*APP], pid1=pid1, BOOTSTRAP_HTTP_PORT=str(port), BOOTSTRAP_READY_CMD=f"test -e {flag}",
                  BOOTSTRAP_DRAIN_SECONDS="5")
    agent.wait_line(r"^app ready pid=")
    wait_until(lambda: http_code(port, "/live") == 200, timeout=15)
    # Before ready: alive, not ready, not started.
    assert codes(port) == (503, 200, 503)
    answer = http_get(port, "/status")
    assert answer is not None and answer[0] == 200
    assert json.loads(answer[1])["state"] == "starting"

    flag.touch()
    wait_until(lambda: http_code(port, "/ready") == 200, timeout=15)
    assert codes(port) == (200, 200, 200)
    answer = http_get(port, "/status")
    assert answer is not None
    doc = json.loads(answer[1])
    assert doc["state"] == "ready" and doc["ready_at"] and doc["pid"] == agent.status()["pid"]

    # Stopping: not ready at once; still live and started while the 5 s drain runs.
    agent.signal(signal.SIGTERM)
    wait_until(lambda: http_code(port, "/ready") == 503, timeout=5)
    # `ready` goes first, then status.json says stopping: never the other way round
    wait_until(lambda: agent.status()["state"] == "stopping", timeout=5)
    assert codes(port) == (503, 200, 200)
    answer = http_get(port, "/status")
    assert answer is not None and json.loads(answer[1])["state"] == "stopping"
    assert agent.wait(30) == 143
    assert http_code(port, "/live") is None  # the helper went with bootstrap


def test_probe_answers_while_the_app_burns_cpu(start: Start) -> None:
    port, burners = free_port(), 2 * (os.cpu_count() or 2)
    burn = " ".join(["python3 -c 'while True: pass' &"] * burners) + " echo burning; wait"
    agent = start(["/bin/sh", "-c", burn], BOOTSTRAP_HTTP_PORT=str(port))
    agent.wait_line(r"^burning$")
    wait_until(lambda: http_code(port, "/ready") == 200, timeout=15)
    wait_until(lambda: b"bootstrap_app_processes %d.0" % (burners + 1) in (http_get(port, "/metrics") or (0, b""))[1],
               timeout=15)
    for _ in range(20):  # the kubelet's default probe timeout is 1 s; allow 2 under this load
        assert http_code(port, "/ready") == 200
        answer = http_get(port, "/metrics", timeout=2.0)
        assert answer is not None and answer[0] == 200
    cpu = [float(line.split()[1]) for line in answer[1].decode().splitlines()
           if line.startswith("bootstrap_app_cpu_seconds_total ")]
    assert cpu and cpu[0] > 0


def test_a_busy_port_is_reported_and_the_app_is_unharmed(start: Start) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = start([*APP], BOOTSTRAP_HTTP_PORT=str(port))
        agent.wait_line(rf"http endpoint: cannot listen on 0.0.0.0:{port} .*BOOTSTRAP_HTTP_PORT", stream="err")
        wait_until(lambda: agent.status().get("state") == "ready", timeout=15)
