"""What the rendered objects must say: probes that are exactly the agent's, grace arithmetic, the
downward-API env, the HPA's shape, rolling updates by ratio, security contexts, config mounts."""
from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from tests.support import chart as chartlib
from tests.support.chart import CASES, MICROSERVICE, Rendered

pytestmark = pytest.mark.chart

BASE: dict[str, Any] = {"image": {"repository": "registry.local:5000/apps/orders", "tag": "1.4.2"}, "app": {"env": "qa"}}


def with_values(**overrides: Any) -> dict[str, Any]:
    """BASE plus top-level overrides (Helm deep-merges them over the chart's defaults)."""
    values = copy.deepcopy(BASE)
    values.update(overrides)
    return values


def render(values: dict[str, Any] | None = None, name: str = chartlib.RELEASE) -> Rendered:
    return chartlib.render(MICROSERVICE, BASE if values is None else values, name=name)


# --- probes -------------------------------------------------------------------------------------

def test_default_probes_are_tcp_to_the_agents_probe_ports() -> None:
    r = render()
    c = r.container
    assert c["startupProbe"]["tcpSocket"] == {"port": "probe-live"}
    assert c["readinessProbe"]["tcpSocket"] == {"port": "probe-ready"}
    assert c["livenessProbe"]["tcpSocket"] == {"port": "probe-live"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert r.env["BOOTSTRAP_LIVE_PORT"] == str(ports["probe-live"])
    assert r.env["BOOTSTRAP_READY_PORT"] == str(ports["probe-ready"])
    assert r.env["BOOTSTRAP_LIVE_WINDOW"] == "300"


def test_no_default_probe_forks_anything() -> None:
    c = render().container
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "exec" not in c[probe], probe


def test_tcp_probes_are_quick_and_the_startup_window_covers_setup_only() -> None:
    c = render().container
    # Socket probes cost an accept: readiness every second, so the kubelet sees Ready ~0.5 s late.
    assert c["readinessProbe"]["periodSeconds"] == 1
    assert c["startupProbe"]["periodSeconds"] == 1
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] == 30
    r = render(with_values(probes={"startup": {"periodSeconds": 4, "setupSeconds": 10}}))
    assert r.container["startupProbe"]["failureThreshold"] == 3  # ceil(10 / 4)


def test_exec_probe_commands_are_exactly_the_agents() -> None:
    c = render(with_values(probes={"handler": "exec"})).container
    assert c["readinessProbe"]["exec"]["command"] == ["cat", "/run/bootstrap/ready"]
    assert c["livenessProbe"]["exec"]["command"] == ["bootstrap", "probe", "--live"]
    assert c["startupProbe"]["exec"]["command"] == ["bootstrap", "probe", "--startup"]


def test_readiness_follows_the_run_dir() -> None:
    r = render(with_values(agent={"runDir": "/var/run/agent/"}, probes={"handler": "exec"}))
    assert r.container["readinessProbe"]["exec"]["command"] == ["cat", "/var/run/agent/ready"]
    assert r.env["BOOTSTRAP_RUN_DIR"] == "/var/run/agent"


def test_http_probes_with_the_http_handler() -> None:
    r = chartlib.render_case("agent-http")
    c = r.container
    for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/live"), ("startupProbe", "/startup")):
        assert c[probe]["httpGet"] == {"path": path, "port": "agent"}
        assert "exec" not in c[probe]
    assert {"name": "agent", "containerPort": 9901, "protocol": "TCP"} in c["ports"]
    assert r.env["BOOTSTRAP_HTTP_PORT"] == "9901"
    assert {"name": "agent", "port": 9901, "targetPort": "agent", "protocol": "TCP"} in r.one("Service")["spec"]["ports"]
    assert r.one("ServiceMonitor")["spec"]["endpoints"][0]["port"] == "agent"


def test_probe_ports_off_renders_no_probe_env() -> None:
    r = render(with_values(agent={"livePort": None, "readyPort": None}, probes={"handler": "exec"}))
    assert "BOOTSTRAP_LIVE_PORT" not in r.env and "BOOTSTRAP_READY_PORT" not in r.env
    assert not [p for p in r.container["ports"] if p["name"].startswith("probe-")]


def test_no_http_port_env_without_the_agent_port() -> None:
    assert "BOOTSTRAP_HTTP_PORT" not in render().env


@pytest.mark.parametrize(("timeout", "period"), [(300, 10), (180, 10), (420, 15), (1, 10), (601, 30), (30, 1)])
@pytest.mark.parametrize("handler", ["exec", "httpGet"])
def test_startup_window_covers_the_ready_timeout(timeout: int, period: int, handler: str) -> None:
    r = render(with_values(agent={"readyTimeoutSeconds": timeout, "httpPort": 9901},
                           probes={"handler": handler, "startup": {"periodSeconds": period}}))
    probe = r.container["startupProbe"]
    window = probe["failureThreshold"] * probe["periodSeconds"]
    # At least the timeout, plus one period so the agent's own deadline is recorded first.
    assert timeout + period <= window < timeout + 2 * period
    assert r.env["BOOTSTRAP_READY_TIMEOUT"] == str(timeout)


def test_explicit_startup_threshold_is_kept_when_long_enough() -> None:
    r = render(with_values(probes={"startup": {"failureThreshold": 30}}))
    assert r.container["startupProbe"]["failureThreshold"] == 30


# --- termination --------------------------------------------------------------------------------

@pytest.mark.parametrize(("drain", "stop", "margin", "pre_stop"),
                         [(5, 30, 5, None), (0, 30, 0, None), (10, 120, 15, None), (8, 45, 7, 3)])
def test_grace_period_is_prestop_plus_drain_plus_stop_plus_margin(
        drain: int, stop: int, margin: int, pre_stop: int | None) -> None:
    values = with_values(agent={"drainSeconds": drain, "stopTimeoutSeconds": stop, "graceMarginSeconds": margin})
    if pre_stop is not None:
        values["preStop"] = {"enabled": True, "command": ["sleep", str(pre_stop)], "seconds": pre_stop}
    r = render(values)
    assert r.pod_spec["terminationGracePeriodSeconds"] == (pre_stop or 0) + drain + stop + margin
    # The agent gets the very numbers the grace period was computed from.
    assert r.env["BOOTSTRAP_DRAIN_SECONDS"] == str(drain)
    assert r.env["BOOTSTRAP_STOP_TIMEOUT"] == str(stop)
    assert ("lifecycle" in r.container) == (pre_stop is not None)


def test_explicit_grace_period_is_kept_when_long_enough() -> None:
    r = render(with_values(agent={"terminationGracePeriodSeconds": 35}))
    assert r.pod_spec["terminationGracePeriodSeconds"] == 35


# --- env ----------------------------------------------------------------------------------------

def test_downward_api_env() -> None:
    env = render().env
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_app_env_and_name() -> None:
    assert render(name="payments").env["APP_NAME"] == "payments"  # default: the release name
    env = chartlib.render_case("generated-orders").env
    assert (env["APP_NAME"], env["APP_ENV"]) == ("orders", "prod")
    assert env["BOOTSTRAP_IMAGE"] == "registry.local:5000/apps/orders:1.4.2"
    assert env["BOOTSTRAP_LOG_ROOT"] == "/data/logs"
    assert env["JAVA_TOOL_OPTIONS"] == "-XX:MaxRAMPercentage=75.0"  # extra env comes after


def test_chart_env_names_are_unique() -> None:
    for name in ("defaults", "all-features", "agent-http", "generated-legacy-war"):
        names = [e["name"] for e in chartlib.render_case(name).container["env"]]
        assert len(names) == len(set(names)), name


# --- workload shape -----------------------------------------------------------------------------

def test_hpa_shape() -> None:
    values = chartlib.load_values(CASES / "all-features.yaml")
    r = chartlib.render_case("all-features")
    hpa = r.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": r.one("Deployment")["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 20)
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 65}}},
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 85}}},
    ]
    assert hpa["spec"]["behavior"] == values["autoscaling"]["behavior"]
    # The HPA owns the replica count; a fixed one would fight it on every upgrade.
    assert "replicas" not in r.one("Deployment")["spec"]


def test_hpa_with_one_metric_and_no_behavior() -> None:
    r = render(with_values(autoscaling={"enabled": True, "targetCPUUtilizationPercentage": 70}))
    spec = r.one("HorizontalPodAutoscaler")["spec"]
    assert [m["resource"]["name"] for m in spec["metrics"]] == ["cpu"]
    assert "behavior" not in spec


def test_no_hpa_by_default_and_fixed_replicas() -> None:
    r = render()
    assert not r.has("HorizontalPodAutoscaler")
    assert r.one("Deployment")["spec"]["replicas"] == 2


def test_rolling_update_by_ratio_and_rollback_history() -> None:
    spec = render().one("Deployment")["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "0%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] > 300  # longer than the default ready timeout
    recreate = render(with_values(strategy={"type": "Recreate"})).one("Deployment")["spec"]["strategy"]
    assert recreate == {"type": "Recreate"}


def test_log_hostpath_volume() -> None:
    r = chartlib.render_case("all-features")
    assert {"name": "logs", "hostPath": {"path": "/srv/logs", "type": "DirectoryOrCreate"}} in r.pod_spec["volumes"]
    assert {"name": "logs", "mountPath": "/data/logs"} in r.container["volumeMounts"]
    assert r.env["BOOTSTRAP_LOG_ROOT"] == "/data/logs"
    assert r.env["BOOTSTRAP_LOG_DIR"] == "{app}/{env}/{pod}"


def test_non_root_pod_without_bootstrap_user() -> None:
    r = render()
    assert r.pod_spec["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    sc = r.container["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["allowPrivilegeEscalation"] is False
    assert "BOOTSTRAP_USER" not in r.env


def test_root_setup_with_bootstrap_user_keeps_only_the_needed_capabilities() -> None:
    r = chartlib.render_case("generated-legacy-war")
    assert "runAsNonRoot" not in r.pod_spec["securityContext"]
    assert r.pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = r.container["securityContext"]
    assert sc["runAsUser"] == 0
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}
    assert sc["allowPrivilegeEscalation"] is False
    assert r.env["BOOTSTRAP_USER"] == "tomcat"


def test_security_context_overrides_merge() -> None:
    r = render(with_values(podSecurityContext={"runAsUser": 1000}, securityContext={"readOnlyRootFilesystem": True}))
    assert r.pod_spec["securityContext"]["runAsUser"] == 1000
    assert r.pod_spec["securityContext"]["runAsNonRoot"] is True
    assert r.container["securityContext"]["readOnlyRootFilesystem"] is True
    assert r.container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_pod_defaults_for_many_apps() -> None:
    spec = render().pod_spec
    assert spec["enableServiceLinks"] is False
    assert spec["automountServiceAccountToken"] is False
    assert spec["containers"][0]["name"] == "app"


# --- config files -------------------------------------------------------------------------------

def test_config_files_mount_into_the_agents_env_dir() -> None:
    r = chartlib.render_case("generated-legacy-war")  # app.env=production: the agent's alias for prod
    cm = r.one("ConfigMap")
    assert set(cm["data"]) == {"application.properties", "logback.xml"}
    # One directory mount (a subPath is never updated by the kubelet), linked by the agent over
    # conf.d/prod/ (the env dir) as BOOTSTRAP_CONF_OVERLAY.
    mounts = {m["mountPath"]: m for m in r.container["volumeMounts"] if m["name"] == "config"}
    assert mounts == {"/app/conf.configmap": {"name": "config", "mountPath": "/app/conf.configmap", "readOnly": True}}
    assert r.env["BOOTSTRAP_CONF_OVERLAY"] == "/app/conf.configmap"
    assert cm["metadata"]["annotations"]["microservice/conf-dir"] == "/app/conf.d/prod"
    assert {"name": "config", "configMap": {"name": cm["metadata"]["name"]}} in r.pod_spec["volumes"]


def test_config_checksum_changes_with_content() -> None:
    def checksum(content: str) -> str:
        r = render(with_values(configFiles={"files": {"app.properties": content}}))
        return str(r.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum("a=1\n") == checksum("a=1\n")
    assert checksum("a=1\n") != checksum("a=2\n")
    assert re.fullmatch(r"[0-9a-f]{64}", checksum("a=1\n"))
    assert "annotations" not in render().one("Deployment")["spec"]["template"]["metadata"]


def test_env_dir_override() -> None:
    r = render(with_values(app={"env": "PROD"}, configFiles={"files": {"x.conf": "x"}, "envDir": "PROD"},
                           agent={"appHome": "/opt/app/"}))
    assert r.container["volumeMounts"][1]["mountPath"] == "/opt/app/conf.configmap"
    assert r.one("ConfigMap")["metadata"]["annotations"]["microservice/conf-dir"] == "/opt/app/conf.d/PROD"


# --- other objects ------------------------------------------------------------------------------

def test_service_targets_the_first_port() -> None:
    ports = chartlib.render_case("generated-orders").one("Service")["spec"]["ports"]
    assert ports[0] == {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    assert ports[1] == {"name": "management", "port": 9090, "targetPort": "management", "protocol": "TCP"}


def test_traefik_ingress() -> None:
    r = chartlib.render_case("all-features")
    ing = r.one("Ingress")
    assert ing["spec"]["ingressClassName"] == "traefik"
    annotations = ing["metadata"]["annotations"]
    assert annotations["traefik.ingress.kubernetes.io/router.entrypoints"] == "web,websecure"
    assert annotations["traefik.ingress.kubernetes.io/router.middlewares"] == \
        "shop-strip-prefix@kubernetescrd,shop-ratelimit@kubernetescrd"
    assert annotations["traefik.ingress.kubernetes.io/router.priority"] == "10"
    rules = {rule["host"]: [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] for rule in ing["spec"]["rules"]}
    assert rules == {"orders.example.com": [("/", "Prefix"), ("/api/v2", "Prefix")],
                     "orders.internal.example.com": [("/health", "Exact")]}
    backends = {p["backend"]["service"]["name"] for rule in ing["spec"]["rules"] for p in rule["http"]["paths"]}
    assert backends == {r.one("Service")["metadata"]["name"]}
    assert ing["spec"]["tls"] == [{"secretName": "orders-example-com", "hosts": ["orders.example.com"]}]


def test_pdb_and_service_account() -> None:
    r = render()
    assert r.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == "25%"
    assert r.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == \
        r.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert r.one("ServiceAccount")["metadata"]["name"] == r.pod_spec["serviceAccountName"]
    off = render(with_values(pdb={"enabled": False}, serviceAccount={"create": False}))
    assert not off.has("PodDisruptionBudget") and not off.has("ServiceAccount")
    assert off.pod_spec["serviceAccountName"] == "default"


def test_service_monitor_selects_the_service() -> None:
    r = chartlib.render_case("all-features")
    sm = r.one("ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"].items() <= r.one("Service")["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/actuator/prometheus",
                                        "interval": "15s", "scrapeTimeout": "5s"}]
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_default_objects() -> None:
    assert render().kinds() == ["Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]


# --- names and labels ---------------------------------------------------------------------------

def test_standard_labels() -> None:
    labels = render().one("Deployment")["metadata"]["labels"]
    assert labels == {
        "helm.sh/chart": "microservice-0.1.0",
        "app.kubernetes.io/name": "orders",
        "app.kubernetes.io/instance": "orders",
        "app.kubernetes.io/version": "1.4.2",
        "app.kubernetes.io/managed-by": "Helm",
    }


def test_names_are_dns_labels_cut_to_63() -> None:
    long_name = "a" * 40 + ".b_" + "c" * 20  # a valid APP_NAME, 63 characters
    r = render(with_values(app={"name": long_name, "env": "qa"}), name="release-" + "x" * 40)
    for obj in r.objects:
        name = obj["metadata"]["name"].removesuffix("-config")
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63
    assert r.env["APP_NAME"] == long_name
    legacy = chartlib.render_case("generated-legacy-war")
    assert legacy.one("Service")["metadata"]["name"] == "orders-billing-legacy"
    assert legacy.env["APP_NAME"] == "billing.legacy"


def test_notes_say_how_to_reach_it() -> None:
    notes = chartlib.render_case("all-features").notes
    assert "https://orders.example.com/api/v2" in notes
    assert "bootstrap status" in notes
    assert "terminationGracePeriodSeconds=63" in notes
    assert "ServiceMonitor orders scrapes port metrics/actuator/prometheus" in notes


# --- the chart's own contract --------------------------------------------------------------------

def own_objects(schema: dict[str, Any], path: str = "") -> list[str]:
    """Dotted paths of every schema object closed with additionalProperties: false."""
    found = [path] if schema.get("additionalProperties") is False else []
    for key, sub in schema.get("properties", {}).items():
        found += own_objects(sub, f"{path}.{key}".lstrip("."))
    return found


def test_schema_closes_every_own_object() -> None:
    import helm_python as helm

    with helm.Chart.load(MICROSERVICE) as chart:
        schema = chart.schema
    assert schema is not None
    closed = own_objects(schema)
    assert {"", "app", "image", "agent", "probes.startup", "logs", "autoscaling", "ingress", "pdb",
            "serviceAccount", "serviceMonitor", "configFiles", "strategy", "preStop"} <= set(closed)
    for path in closed:
        values = copy.deepcopy(BASE)
        target = values
        for key in filter(None, path.split(".")):
            target = target.setdefault(key, {})
        target["misspelt"] = 1
        with pytest.raises(helm.HelmValuesError, match="additional properties 'misspelt' not allowed"):
            render(values)


def value_paths(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """Every key of values.yaml that is documented on its own: leaves, and objects holding maps."""
    paths = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in {"resources", "configFiles.files", "prune.resources"}:
            paths += value_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def undocumented_lines(text: str) -> list[str]:
    """Key lines of a values file that hold a value but follow no `# --` comment.

    A parent object needs no comment of its own; a key documented as a whole (`resources:`) covers
    its subtree, and so does a list default (`ports:`) for its items.
    """
    lines = text.splitlines()
    bad: list[str] = []
    covered_until = -1  # skip lines indented deeper than this while inside a covered subtree
    for number, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped or stripped.startswith("#"):
            continue
        if covered_until >= 0 and indent > covered_until:
            continue
        covered_until = -1
        match = re.match(r"([A-Za-z]\w*):(.*)$", stripped)
        if not match:
            continue
        documented = number > 0 and any(
            "# --" in lines[k] for k in range(number - 1, -1, -1)
            if all(lines[j].lstrip().startswith("#") for j in range(k, number)))
        following = next((ln for ln in lines[number + 1:] if ln.strip() and not ln.lstrip().startswith("#")), "")
        follow_indent = len(following) - len(following.lstrip())
        is_parent = (match.group(2).strip() == "" and follow_indent > indent
                     and not following.lstrip().startswith("- "))
        if documented:
            covered_until = indent
        elif not is_parent:
            bad.append(f"{number + 1}: {stripped}")
    return bad


@pytest.mark.parametrize("chart", [MICROSERVICE, chartlib.NODE_LOGS], ids=["microservice", "node-logs"])
def test_every_value_is_commented_and_in_the_readme(chart: Any) -> None:
    text = (chart / "values.yaml").read_text()
    assert undocumented_lines(text) == []
    readme = (chart / "README.md").read_text()
    missing = [p for p in value_paths(yaml.safe_load(text)) if f"`{p}`" not in readme]
    assert missing == [], f"values missing from {chart.name}/README.md"


def test_validator_is_strict() -> None:
    """Guards the guard: a misspelt field must fail validation, not pass unchecked."""
    import kubernetes_validate.utils as kv

    deployment = render().one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kv.ValidationError):
        chartlib.validate(deployment, chartlib.OLDEST_KUBE)
    monitor = chartlib.render_case("agent-http").one("ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "5s"
    with pytest.raises(Exception, match="intervall"):
        chartlib.validate(monitor, chartlib.OLDEST_KUBE)
