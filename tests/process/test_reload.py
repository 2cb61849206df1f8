"""Config reload (BOOTSTRAP_RELOAD) with real processes: the agent runs the print_signals app, its
conf.d/qa/ is a ConfigMap volume updated the kubelet's way, step by step (tests/support/
configmap_volume.py), and each action is watched from outside: the signals the app prints, the
journal records, status.json, supervisor.json, the probe ports."""
from __future__ import annotations

import http.server
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.helpers.reload_watch import spread_delay
from tests.support.agent import APP, Agent, records, run_bootstrap
from tests.support.apptree import app_tree
from tests.support.configmap_volume import ConfigMapVolume
from tests.support.net import free_port
from tests.support.paths import BOOTSTRAP
from tests.support.waiting import wait_until

DEBOUNCE = 0.3
INITIAL = {"app.properties": "env=qa\n"}


@pytest.fixture
def tree(tmp_path: Path) -> tuple[dict[str, str], ConfigMapVolume]:
    env = app_tree(tmp_path)
    qa = Path(env["APP_HOME"]) / "conf.d" / "qa"
    shutil.rmtree(qa)
    volume = ConfigMapVolume(qa)
    volume.write(INITIAL)
    env.update(BOOTSTRAP_RELOAD_DEBOUNCE=str(DEBOUNCE), BOOTSTRAP_LOG_LEVEL="debug")
    return env, volume


@pytest.fixture
def start(tree: tuple[dict[str, str], ConfigMapVolume]) -> Iterator[Any]:
    agents: list[Agent] = []

    def run(**extra: str) -> Agent:  # as PID 1 of a PID namespace: the kill ends the app too
        agent = Agent([BOOTSTRAP, "run", "--", *APP], {**tree[0], **extra}, pid1=True)
        agents.append(agent)
        agent.wait_line(r"app ready pid=")
        wait_until(lambda: agent.status().get("state") == "ready" and (agent.status().get("config") or {}).get("hash"))
        return agent

    yield run
    for agent in agents:
        agent.kill()


def reloads(agent: Agent) -> list[dict[str, Any]]:
    return [r for r in records(str(Path(agent.run_dir).parent / "logs")) if r["event"] == "reload"]


def hups(agent: Agent) -> int:
    return sum(1 for line in agent.out if line == "app signal SIGHUP")


def home(agent: Agent) -> Path:
    return Path(agent.run_dir).parent / "app"


def test_signal_follows_the_kubelets_atomic_update(start: Any, tree: Any) -> None:
    agent = start(BOOTSTRAP_RELOAD="signal:HUP")
    volume: ConfigMapVolume = tree[1]
    before = agent.status()["config"]["hash"]
    volume.write({"app.properties": "env=qa\nfeature=on\n"})
    wait_until(lambda: hups(agent) == 1, timeout=10)
    record = wait_until(lambda: reloads(agent), timeout=5)[0]
    assert (record["action"], record["result"], record["changed"]) == ("signal", "ok", ["app.properties"])
    assert record["old_hash"] == before and record["new_hash"] != before and record["check"] is None
    assert record["seconds"] >= 0
    config = wait_until(lambda: agent.status()["config"]["last_reload"] and agent.status()["config"])
    assert config["hash"] == record["new_hash"] and config["applied_at"]
    counters = wait_until(lambda: agent.counters().get("config_reloads") and agent.counters())
    assert counters["config_reloads"] == {"signal/ok": 1} and counters["config_applied_at"]
    # The app reads the new bytes through the same link, and no kubelet entry reaches conf/.
    conf = home(agent) / "conf"
    assert (conf / "app.properties").read_text() == "env=qa\nfeature=on\n"
    assert sorted(p.name for p in conf.iterdir()) == ["app.properties", "logback.xml"]


def test_no_op_swaps_and_attribute_changes_do_nothing(start: Any, tree: Any) -> None:
    agent = start(BOOTSTRAP_RELOAD="signal:HUP")
    volume: ConfigMapVolume = tree[1]
    for _ in range(3):
        volume.write(dict(INITIAL))  # a new ..data with the same names and bytes
        time.sleep(0.05)
    target = volume.dir / "app.properties"
    target.resolve().chmod(0o600)
    Path(target.resolve()).touch()
    time.sleep(DEBOUNCE + 1.5)
    assert hups(agent) == 0 and reloads(agent) == [], agent.err[-10:]
    assert any("same names and bytes" in line for line in agent.err)


def test_a_burst_of_five_changes_is_one_action_with_the_final_content(start: Any, tree: Any) -> None:
    agent = start(BOOTSTRAP_RELOAD="signal:HUP", BOOTSTRAP_RELOAD_DEBOUNCE="1")
    volume: ConfigMapVolume = tree[1]
    for n in range(5):
        volume.write({"app.properties": f"env=qa\nn={n}\n"})
        time.sleep(0.18)  # five changes within one second
    wait_until(lambda: reloads(agent), timeout=10)
    time.sleep(1.5)
    assert hups(agent) == 1
    (record,) = reloads(agent)
    assert (home(agent) / "conf" / "app.properties").read_text() == "env=qa\nn=4\n"
    assert record["new_hash"] == agent.status()["config"]["hash"]


def test_edits_in_subdirectories_of_a_plain_layer_are_seen_at_once(start: Any) -> None:
    """conf.d/common/ is a plain directory (no ConfigMap): a file edited in place in a subdirectory,
    and a file in a subdirectory made after the start, each act within seconds (not at the 30 s
    re-read), so every directory under a layer is watched, new ones included."""
    agent = start(BOOTSTRAP_RELOAD="signal:HUP")
    common = home(agent) / "conf.d" / "common"
    (common / "logback.xml").write_text("<configuration debug='true'/>\n")
    wait_until(lambda: hups(agent) == 1, timeout=5)
    wait_until(lambda: len(reloads(agent)) == 1)
    (common / "extra").mkdir()
    (common / "extra" / "a.properties").write_text("a=1\n")
    wait_until(lambda: hups(agent) == 2, timeout=5)  # a new linked directory, a new name
    wait_until(lambda: len(reloads(agent)) == 2)
    with (common / "extra" / "a.properties").open("a") as fh:  # in place in the new directory: new bytes
        fh.write("b=2\n")
    wait_until(lambda: hups(agent) == 3, timeout=5)
    wait_until(lambda: len(reloads(agent)) == 3)
    assert [r["changed"] for r in reloads(agent)][-1] == ["extra/a.properties"]


def test_restart_in_the_pod_relinks_added_and_removed_keys_and_keeps_live(start: Any, tree: Any) -> None:
    live, ready = free_port(), free_port()
    agent = start(BOOTSTRAP_RELOAD="restart", BOOTSTRAP_LIVE_PORT=str(live), BOOTSTRAP_READY_PORT=str(ready),
                  BOOTSTRAP_DRAIN_SECONDS="0.3")
    volume: ConfigMapVolume = tree[1]
    old_pid = agent.status()["pid"]
    failures: list[str] = []
    readiness: list[bool] = []
    done = threading.Event()

    def probe() -> None:  # the kubelet's tcpSocket probes, far more often than a kubelet would
        while not done.is_set():
            for port, sink in ((live, None), (ready, readiness)):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        ok = True
                except OSError as exc:
                    ok = False
                    if sink is None:
                        failures.append(repr(exc))
                if sink is not None:
                    sink.append(ok)
            time.sleep(0.02)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        volume.write({"app.properties": "env=qa\nv=2\n", "extra.properties": "added\n"})
        record = wait_until(lambda: reloads(agent), timeout=20)[0]
        time.sleep(0.3)
    finally:
        done.set()
        prober.join()
    assert record["result"] == "ok" and record["action"] == "restart", record
    assert sorted(record["changed"]) == ["app.properties", "extra.properties"]
    status = agent.status()
    assert status["state"] == "ready" and status["pid"] != old_pid and record["pid"] == status["pid"]
    assert failures == [], failures[:5]  # the live port never refused
    assert False in readiness and readiness[-1] is True  # not ready during the restart, ready after
    assert [line for line in agent.out if "ready pid=" in line][-1].startswith("app ready")
    assert sum(1 for line in agent.out if line == "app signal SIGTERM") == 1  # the old app was stopped
    conf = home(agent) / "conf"
    assert (conf / "extra.properties").read_text() == "added\n"
    # The same log dir and journal: a start, the reload, no exit.
    assert [r["event"] for r in records(str(Path(agent.run_dir).parent / "logs"))] == ["start", "reload"]

    volume.write({"app.properties": "env=qa\nv=3\n"})  # extra.properties removed from the ConfigMap
    wait_until(lambda: len(reloads(agent)) == 2, timeout=20)
    assert not (conf / "extra.properties").exists() and not (conf / "extra.properties").is_symlink()
    assert (conf / "logback.xml").is_symlink()  # nothing else touched
    wait_until(lambda: agent.counters().get("config_reloads") == {"restart/ok": 2})


def test_a_failing_check_keeps_the_app_and_records_why(start: Any, tree: Any) -> None:
    agent = start(BOOTSTRAP_RELOAD="signal:HUP",
                  BOOTSTRAP_RELOAD_CHECK="sh -c 'grep -q valid=yes conf.d/qa/app.properties || { echo bad config; exit 3; }'")
    volume: ConfigMapVolume = tree[1]
    volume.write({"app.properties": "valid=no\n"})
    record = wait_until(lambda: reloads(agent), timeout=10)[0]
    assert record["result"] == "check-failed" and record["check"]["ok"] is False
    assert "exit 3" in record["check"]["detail"] and "bad config" in record["check"]["detail"]
    assert hups(agent) == 0
    assert agent.status()["config"]["hash"] == record["old_hash"]  # not applied
    volume.write({"app.properties": "valid=yes\n"})
    wait_until(lambda: len(reloads(agent)) == 2, timeout=10)
    assert reloads(agent)[1]["result"] == "ok" and reloads(agent)[1]["check"]["ok"] is True
    assert hups(agent) == 1
    wait_until(lambda: agent.counters()["config_reloads"] == {"signal/check-failed": 1, "signal/ok": 1})


def test_exit_stops_the_container_and_names_the_reload(start: Any, tree: Any, tmp_path: Path) -> None:
    term = tmp_path / "termination-log"
    term.write_text("")
    agent = start(BOOTSTRAP_RELOAD="exit", BOOTSTRAP_TERMINATION_LOG=str(term))
    tree[1].write({"app.properties": "env=qa\nv=2\n"})
    assert agent.wait(20) == 143
    exit_record = records(str(tmp_path / "logs"))[-1]
    assert exit_record["event"] == "exit" and exit_record["cause"] == "stopped"
    assert exit_record["reload"]["action"] == "exit" and exit_record["reload"]["changed"] == ["app.properties"]
    assert "config change (BOOTSTRAP_RELOAD=exit)" in term.read_text()


class _Refresh(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the handler's name
        self.seen.append(self.path)
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def test_http_posts_to_the_refresh_endpoint(start: Any, tree: Any) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Refresh)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Refresh.answers, _Refresh.seen = [200, 503], []
    try:
        url = f"http://127.0.0.1:{server.server_port}/actuator/refresh"
        agent = start(BOOTSTRAP_RELOAD=f"http:{url}")
        tree[1].write({"app.properties": "v=2\n"})
        wait_until(lambda: reloads(agent), timeout=10)
        tree[1].write({"app.properties": "v=3\n"})
        wait_until(lambda: len(reloads(agent)) == 2, timeout=10)
    finally:
        server.shutdown()
    first, second = reloads(agent)
    assert _Refresh.seen == ["/actuator/refresh"] * 2
    assert (first["result"], first["detail"]) == ("ok", "HTTP 200")
    assert (second["result"], second["detail"]) == ("failed", "HTTP 503")
    assert hups(agent) == 0


def test_spread_waits_this_pods_share(start: Any, tree: Any) -> None:
    pod, spread = "orders-7d9c-x2k4q", 3.0
    expected = spread_delay(spread, pod)
    assert 0 <= expected < spread
    agent = start(BOOTSTRAP_RELOAD="signal:HUP", BOOTSTRAP_RELOAD_SPREAD=str(spread), POD_NAME=pod)
    tree[1].write({"app.properties": "v=2\n"})
    changed = time.time()
    wait_until(lambda: hups(agent) == 1, timeout=15)
    took = time.time() - changed
    assert DEBOUNCE + expected - 0.05 <= took <= DEBOUNCE + expected + 1.0, (took, expected)
    # Spread evenly: other pod names give other delays, all within [0, spread).
    delays = [spread_delay(spread, f"orders-7d9c-{n:05d}") for n in range(200)]
    assert min(delays) < spread / 10 and max(delays) > spread * 0.9 and max(delays) < spread


def test_a_signal_sent_to_pid1_is_forwarded_and_never_a_reload(start: Any) -> None:
    agent = start(BOOTSTRAP_RELOAD="restart")
    watcher = agent.counters()["helper_pids"]["config watcher"]
    agent.signal(signal.SIGHUP)
    agent.signal(signal.SIGUSR1)
    wait_until(lambda: hups(agent) == 1 and "app signal SIGUSR1" in agent.out)
    time.sleep(DEBOUNCE + 0.5)
    assert reloads(agent) == [] and agent.counters()["helper_pids"]["config watcher"] == watcher


def test_bad_reload_setting_is_one_line_and_exit_78(tree: Any) -> None:
    result = run_bootstrap("run", "--", "true", env={**tree[0], "BOOTSTRAP_RELOAD": "reload-please"})
    assert result.returncode == 78
    (line,) = result.stderr.splitlines()
    assert line.startswith("bootstrap: error: BOOTSTRAP_RELOAD='reload-please' is invalid")
