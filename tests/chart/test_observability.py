"""The chart's observability objects: the agent port on the Service, the ServiceMonitor endpoints,
the prometheus.io/* annotations and the Grafana dashboard ConfigMap."""
from __future__ import annotations

import json
import re

import pytest

from tests.support import chart as chartlib
from tests.support.chart import MICROSERVICE, Rendered

pytestmark = pytest.mark.chart

DASHBOARD = MICROSERVICE / "dashboards" / "bootstrap.json"
BASE = {"image": {"repository": "registry.local:5000/apps/orders", "tag": "1.4.2"}, "app": {"env": "qa"}}


def pod_annotations(r: Rendered) -> dict[str, str]:
    return r.one("Deployment")["spec"]["template"]["metadata"].get("annotations", {})


def test_scrape_annotations_point_at_the_agent() -> None:
    r = chartlib.render_case("agent-metrics-annotations")
    annotations = pod_annotations(r)
    assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "9901", "prometheus.io/path": "/metrics"}
    assert annotations["example.com/owner"] == "logistics"
    assert {"name": "agent", "containerPort": 9901, "protocol": "TCP"} in r.container["ports"]
    assert {"name": "agent", "port": 9901, "targetPort": "agent", "protocol": "TCP"} in r.one("Service")["spec"]["ports"]
    assert not r.has("ServiceMonitor")
    assert "prometheus.io/* pod annotations point Prometheus at the agent's :9901/metrics" in r.notes


def test_no_scrape_annotations_by_default() -> None:
    r = chartlib.render(MICROSERVICE, {**BASE, "agent": {"httpPort": 9901}})
    assert not any(k.startswith("prometheus.io/") for k in pod_annotations(r))
    assert not any(o["kind"] == "ConfigMap" for o in r.objects)


def test_service_monitor_scrapes_the_app_and_the_agent() -> None:
    r = chartlib.render_case("agent-metrics-servicemonitor")
    endpoints = r.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoints == [
        {"port": "metrics", "path": "/actuator/prometheus", "interval": "15s", "scrapeTimeout": "10s"},
        {"port": "agent", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s",
         "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]},
    ]
    service_ports = {p["name"] for p in r.one("Service")["spec"]["ports"]}
    assert {e["port"] for e in endpoints} <= service_ports
    assert "scrapes the agent's port agent/metrics every 15s" in r.notes


def test_service_monitor_on_the_agent_alone() -> None:
    endpoints = chartlib.render_case("agent-http").one("ServiceMonitor")["spec"]["endpoints"]
    assert [(e["port"], e["path"]) for e in endpoints] == [("agent", "/metrics")]


def dashboard_configmap(r: Rendered) -> dict:
    found = [o for o in r.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    assert len(found) == 1, r.kinds()
    return found[0]


def test_dashboard_configmap_carries_the_sidecar_label_and_the_file() -> None:
    cm = dashboard_configmap(chartlib.render_case("agent-metrics-annotations"))
    assert cm["metadata"]["name"] == "orders-dashboard"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["labels"]["team"] == "platform"
    assert cm["metadata"]["labels"]["app.kubernetes.io/name"] == "orders"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Platform"}
    assert json.loads(cm["data"]["bootstrap-agent.json"]) == json.loads(DASHBOARD.read_text())


def test_dashboard_name_fits_with_a_long_release() -> None:
    r = chartlib.render(MICROSERVICE, {**BASE, "grafanaDashboard": {"enabled": True}}, name="r" * 63)
    name = dashboard_configmap(r)["metadata"]["name"]
    assert len(name) <= 63 and name.endswith("-dashboard")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_has_the_variables_and_panels_the_issue_asks_for() -> None:
    d = dashboard()
    names = [v["name"] for v in d["templating"]["list"]]
    assert names == ["datasource", "namespace", "node", "app"]
    panels = [p for p in d["panels"] if p["type"] != "row"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in ("bootstrap_ready", "bootstrap_time_to_ready_seconds", "bootstrap_starts_total",
                   "bootstrap_exits_total", "bootstrap_checker_restarts_total", "bootstrap_app_cpu_seconds_total",
                   "bootstrap_app_resident_memory_bytes", "bootstrap_app_threads", "bootstrap_app_open_fds",
                   "bootstrap_log_dir_bytes", "bootstrap_network_receive_bytes_total",
                   "bootstrap_network_transmit_bytes_total"):
        assert re.search(rf"\b{metric}\b", exprs), metric
    assert len({p["id"] for p in d["panels"]}) == len(d["panels"])
    for p in panels:  # every panel filters by the three variables, through bootstrap_info
        for t in p["targets"]:
            assert all(f"=~\"${v}\"" in t["expr"] for v in ("namespace", "node", "app")), p["title"]
            assert t["datasource"]["uid"] == "${datasource}"


def test_dashboard_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, p["title"]
        cells |= mine
