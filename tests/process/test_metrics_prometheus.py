"""A real Prometheus (Debian's 2.42) scrapes a running `bootstrap run` every second: the series
arrive with their labels, `promtool check metrics` accepts the endpoint's output, and every PromQL
expression of the chart's Grafana dashboard parses and returns data for this agent."""
from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent import APP, REPO, Agent
from tests.support.apptree import app_tree
from tests.support.net import free_port, http_get
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_tool
from tests.support.prometheus import Prometheus
from tests.support.waiting import wait_until

pytestmark = pytest.mark.process

DASHBOARD = REPO / "helm" / "microservice" / "dashboards" / "bootstrap.json"
# What Kubernetes service discovery would attach; the dashboard's variables select on them.
TARGET_LABELS = {"namespace": "shop", "node": "node-a", "pod": "orders-7d9f-x2x1q"}
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "1s", "$__range": "5m"}
SERIES = ("bootstrap_phase_seconds", "bootstrap_ready", "bootstrap_ready_transitions_total",
          "bootstrap_time_to_ready_seconds", "bootstrap_check_duration_seconds_bucket",
          "bootstrap_check_failures_total", "bootstrap_signals_forwarded_total", "bootstrap_zombies_reaped_total",
          "bootstrap_checker_restarts_total", "bootstrap_app_cpu_seconds_total", "bootstrap_app_resident_memory_bytes",
          "bootstrap_app_threads", "bootstrap_app_open_fds", "bootstrap_app_processes", "bootstrap_log_dir_bytes",
          "bootstrap_info", "bootstrap_state", "bootstrap_start_time_seconds", "bootstrap_starts_total",
          "bootstrap_exits_total", "bootstrap_network_receive_bytes_total", "bootstrap_network_transmit_bytes_total",
          "bootstrap_config_reloads_total", "bootstrap_config_last_applied_time_seconds")
# From the node-logs chart's prune loop (bootstrap logs prune --every) on the same node.
PRUNE_SERIES = ("bootstrap_logs_prune_root_bytes", "bootstrap_logs_prune_cap_bytes", "bootstrap_logs_prune_cap_met",
                "bootstrap_logs_prune_freed_bytes_total", "bootstrap_logs_prune_removed_dirs_total",
                "bootstrap_logs_prune_live_dirs", "bootstrap_logs_prune_dead_dirs")
PRUNE_TARGET_LABELS = {"namespace": "logging", "pod": "node-logs-5kq2x"}  # its node label comes from NODE_NAME


class Setup:
    def __init__(self, agent: Agent, port: int, prometheus: Prometheus) -> None:
        self.agent, self.port, self.prometheus = agent, port, prometheus


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("scraped")
    env = app_tree(root)
    # An earlier run in the same log directory, as after a container restart: an exit record.
    earlier = subprocess.run([BOOTSTRAP, "run", "--", "/bin/sh", "-c", "exit 3"], env=env, capture_output=True,
                             timeout=60)
    assert earlier.returncode == 3, earlier.stderr
    port = free_port()
    agent = Agent([BOOTSTRAP, "run", "--", *APP], {**env, "BOOTSTRAP_HTTP_PORT": str(port),
                                                  "BOOTSTRAP_READY_CMD": "true", "BOOTSTRAP_READY_PERIOD": "1",
                                                  "BOOTSTRAP_IMAGE": "registry.local:5000/base/jre17:1.0",
                                                  "BOOTSTRAP_RELOAD": "signal:USR2", "BOOTSTRAP_RELOAD_DEBOUNCE": "0.2"},
                  pid1=True)
    prometheus = None
    prune_port = free_port()
    prune = subprocess.Popen([BOOTSTRAP, "logs", "prune", "--root", env["BOOTSTRAP_LOG_ROOT"], "--keep-days", "7",
                              "--max-bytes", "1Gi", "--every", "1", "--metrics-port", str(prune_port),
                              "--metrics-address", "127.0.0.1"], env={**env, "NODE_NAME": TARGET_LABELS["node"]},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        agent.wait_line(r"^app ready pid=")
        wait_until(lambda: (http_get(port, "/ready") or (0, b""))[0] == 200, timeout=15)
        agent.signal(signal.SIGUSR1)
        agent.wait_line(r"^app signal SIGUSR1$")
        # A config change the agent applies (BOOTSTRAP_RELOAD): the reload panels' series. The
        # watcher takes its first hash when it starts, so a change written before that is its
        # baseline: change again until one is applied.
        for n in range(1, 11):
            (Path(env["APP_HOME"]) / "conf.d" / "qa" / "app.properties").write_text(f"env=qa\nchanged={n}\n")
            try:
                agent.wait_line(r"^app signal SIGUSR2$", timeout=5)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError("no config change was applied in 10 tries")
        prometheus = Prometheus(root / "prometheus", port, TARGET_LABELS,
                                (("node-logs", prune_port, PRUNE_TARGET_LABELS),))
        # Enough scrapes for rate() and deriv() over the dashboard's windows.
        wait_until(lambda: prometheus.query("count_over_time(bootstrap_ready[1m]) >= 5"), timeout=60, interval=0.5)
        wait_until(lambda: prometheus.query("count_over_time(bootstrap_logs_prune_live_dirs[1m]) >= 3"), timeout=60,
                   interval=0.5)
        yield Setup(agent, port, prometheus)
    finally:
        if prometheus is not None:
            prometheus.stop()
        prune.kill()
        prune.wait(10)
        agent.kill()


def test_the_series_arrive_with_their_labels(setup: Setup) -> None:
    p = setup.prometheus
    names = set(p.api("label/__name__/values"))
    assert set(SERIES + PRUNE_SERIES) <= names, set(SERIES + PRUNE_SERIES) - names
    [info] = p.query("bootstrap_info")
    assert info["metric"] | {} == {"__name__": "bootstrap_info", "app": "demo", "env": "qa", "version": "0.1.0",
                                   "base_image": "registry.local:5000/base/jre17:1.0", "instance": f"127.0.0.1:{setup.port}",
                                   "job": "bootstrap", **TARGET_LABELS}
    assert p.query("bootstrap_ready")[0]["value"][1] == "1"
    assert p.query('bootstrap_signals_forwarded_total{signal="SIGUSR1"}')[0]["value"][1] == "1"
    assert p.query('bootstrap_exits_total{cause="exited"}')[0]["value"][1] == "1"
    assert p.query("bootstrap_starts_total")[0]["value"][1] == "2"
    assert p.query('bootstrap_check_duration_seconds_count{check="cmd"} > 1')
    assert p.query('bootstrap_phase_seconds{phase="ready"}')
    assert float(p.query("bootstrap_time_to_ready_seconds")[0]["value"][1]) > 0
    assert p.query("bootstrap_app_processes")[0]["value"][1] == "1"


def test_promtool_accepts_the_endpoint(setup: Setup) -> None:
    promtool = require_tool("promtool")
    answer = http_get(setup.port, "/metrics")
    assert answer is not None and answer[0] == 200
    checked = subprocess.run([promtool, "check", "metrics"], input=answer[1], capture_output=True, timeout=30)
    assert checked.returncode == 0 and checked.stdout == b"" and checked.stderr == b"", checked


def dashboard_targets() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    found = []
    for panel in doc["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found += [(inner["title"], t["expr"]) for t in inner.get("targets", [])]
    return found


def resolve(expr: str, labels: dict[str, str]) -> str:
    """Grafana's interpolation for one selected value per variable: regex-escaped, then escaped again
    for the PromQL string it lands in, as Grafana's Prometheus data source does."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$(namespace|node|app)\b", lambda m: re.escape(labels[m.group(1)]).replace("\\", "\\\\"), expr)


@pytest.mark.parametrize("title,expr", dashboard_targets(), ids=[t for t, _ in dashboard_targets()])
def test_dashboard_expression_returns_data(setup: Setup, title: str, expr: str) -> None:
    labels = {**TARGET_LABELS, "app": "demo"}
    result = setup.prometheus.query(resolve(expr, labels))  # the API answers 400 when it does not parse
    assert result, f"{title}: no data for {resolve(expr, labels)}"


def test_dashboard_variables_find_the_agent(setup: Setup) -> None:
    doc = json.loads(DASHBOARD.read_text())
    labels = {**TARGET_LABELS, "app": "demo"}
    for var in doc["templating"]["list"]:
        if var["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"]["query"])
        assert match, var["query"]
        selector, label = resolve(match.group(1), labels), match.group(2)
        values = setup.prometheus.api("label/" + label + "/values", **{"match[]": selector})
        assert labels[label] in values, (var["name"], selector, values)


def test_dashboard_has_only_known_metrics() -> None:
    used = set(re.findall(r"\bbootstrap_[a-z_]+", " ".join(e for _, e in dashboard_targets())))
    assert used <= set(SERIES + PRUNE_SERIES) | {"bootstrap_check_duration_seconds_bucket"}, used - set(SERIES)


