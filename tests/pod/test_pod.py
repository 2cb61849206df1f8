"""The rendered chart as a pod: `podman kube play` runs the Deployment's pod with the example app's
image, the kubelet stand-in runs the rendered probes, restarts on a liveness failure and deletes
the pod with the rendered stop. One pod serves the whole module (the tier must stay quick), so the
tests run in file order and the destructive ones come last."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dockerfile_gen.pod.kubelet import Kubelet
from tests.pod.conftest import AGENT_HTTP_PORT, CONFIG_FILE, CONFIG_TEXT, NodeLogs, Played
from tests.support.waiting import wait_until

pytestmark = pytest.mark.pod

QUANTITY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}


def status(played: Played) -> dict[str, Any]:
    return json.loads(played.exec("cat", "/run/bootstrap/status.json").stdout)


def epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def host_pid(played: Played) -> int:
    """The host pid of the container's PID 1 (the agent)."""
    return int(played.inspect()["State"]["Pid"])


def app_host_pid(played: Played) -> int:
    """The host pid of the app: the agent's child whose NSpid is status.json's pid."""
    wanted = status(played)["pid"]
    agent = host_pid(played)
    for task in Path(f"/proc/{agent}/task").iterdir():
        for child in (task / "children").read_text().split():
            nspid = [line for line in Path(f"/proc/{child}/status").read_text().splitlines() if line.startswith("NSpid:")]
            if int(nspid[0].split()[-1]) == wanted:
                return int(child)
    raise AssertionError(f"no child of the agent (host pid {agent}) has pid {wanted} in the pod")


def proc_status(pid: int) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)


def records(played: Played) -> list[dict[str, Any]]:
    """Every start/exit record of the pod, in time order (a restart under podman changes the IP)."""
    lines = [json.loads(line) for path in (played.log_root / "hello-jar").glob("*/.bootstrap.jsonl")
             for line in path.read_text().splitlines()]
    return sorted(lines, key=lambda r: r["time"])


# --- the pod as rendered ----------------------------------------------------------------------

def test_kubelet_sees_ready_within_one_readiness_period(played: Played, kubelet: Kubelet) -> None:
    assert kubelet.wait_for(kubelet.ready, timeout=120), kubelet.events
    seen = kubelet.first("readiness", "Success")
    started = kubelet.first("startup", "Success")
    assert seen is not None and started is not None
    ready_at = epoch(status(played)["ready_at"])
    app_started = epoch(records(played)[0]["time"])
    # The startup probe passes once the app runs, ready or not: one startup tick after the agent's
    # start record (plus the stand-in's own `podman inspect` under load), never waiting for ready.
    startup = played.spec["startupProbe"]
    assert started.at - app_started <= startup["periodSeconds"] + startup["timeoutSeconds"] + 2.0, (
        started.at - app_started, kubelet.events)
    probe = played.spec["readinessProbe"]
    lag = seen.at - ready_at
    # The agent's ready port opens within a millisecond; the kubelet's next tick finds it.
    assert 0 <= lag <= probe["periodSeconds"] + probe["timeoutSeconds"], (lag, kubelet.events)
    print(f"kubelet saw Ready {lag:.3f}s after the agent (readiness period {probe['periodSeconds']}s)")


def test_env_and_the_downward_api_fields_podman_supports(played: Played) -> None:
    env = dict(line.split("=", 1) for line in played.exec("cat", "/proc/1/environ").stdout.split("\0") if "=" in line)
    assert env["APP_ENV"] == "qa" and env["APP_NAME"] == "hello-jar"
    assert env["POD_NAME"] == played.pod  # fieldRef metadata.name: supported
    # Refused by podman 4.3, dropped by the harness; the agent found its IP from the default route.
    assert sorted(played.dropped) == ["NODE_NAME", "POD_IP", "POD_NAMESPACE"]
    assert not {"POD_IP", "NODE_NAME", "POD_NAMESPACE"} & set(env)
    assert status(played)["state"] == "ready"


def test_log_dir_on_the_host_is_named_app_and_ip(played: Played, kubelet: Kubelet) -> None:
    ip = played.ip()
    log_dir = played.log_root / "hello-jar" / ip
    assert (log_dir / "hello.log").is_file(), sorted(str(p) for p in played.log_root.rglob("*"))
    start = json.loads((log_dir / ".bootstrap.jsonl").read_text().splitlines()[0])
    assert (start["event"], start["app"], start["env"], start["ip"], start["pod"]) == ("start", "hello-jar", "qa", ip, played.pod)
    # Through the image's link into the run dir's emptyDir, where the agent linked the log dir.
    assert played.exec("readlink", "/app/logs").stdout.strip() == "/run/bootstrap/links/logs"
    assert played.exec("readlink", "-f", "/app/logs").stdout.strip() == f"/data/logs/hello-jar/{ip}"
    st = log_dir.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (played.pod_spec["securityContext"]["runAsUser"], 10000, 0o2750)


def test_configmap_config_reaches_conf_d_env(played: Played) -> None:
    """The ConfigMap is mounted as a directory (never subPath) beside conf.d and linked over conf.d/qa:
    its keys win, the image's own files for the environment stay."""
    assert played.exec("readlink", f"/app/conf/{CONFIG_FILE}").stdout.strip() == f"/app/conf.configmap/{CONFIG_FILE}"
    assert played.exec("cat", f"/app/conf/{CONFIG_FILE}").stdout == CONFIG_TEXT
    assert played.exec("readlink", "/app/conf/application.properties").stdout.strip() == "/app/conf.d/qa/application.properties"


def test_memory_limit_is_applied_to_the_container_cgroup(played: Played) -> None:
    limit = played.spec["resources"]["limits"]["memory"]
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", limit).groups()  # type: ignore[union-attr]
    cgroup = next(line.split(":", 2)[2] for line in Path(f"/proc/{host_pid(played)}/cgroup").read_text().splitlines()
                  if line.split(":")[1] == "memory")
    applied = int(Path(f"/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes").read_text())
    assert applied == int(number) * QUANTITY[unit]


def test_user_and_capabilities_as_rendered(played: Played) -> None:
    """Pod Security "restricted" as podman plays it: runAsUser/runAsGroup (the image's own ids),
    every capability dropped and none added, no new privileges, RuntimeDefault seccomp and a
    read-only root filesystem, for the agent and the app alike; and the app is ready."""
    rendered, pod = played.spec["securityContext"], played.pod_spec["securityContext"]
    assert rendered["capabilities"] == {"drop": ["ALL"]} and rendered["readOnlyRootFilesystem"] is True
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == pod["runAsGroup"] > 0
    assert "BOOTSTRAP_USER" not in {e["name"] for e in played.spec["env"]}
    for pid in (host_pid(played), app_host_pid(played)):
        fields = proc_status(pid)
        assert fields["Uid"].split() == [str(pod["runAsUser"])] * 4
        assert fields["Gid"].split() == [str(pod["runAsGroup"])] * 4
        assert int(fields["CapBnd"], 16) == int(fields["CapEff"], 16) == int(fields["CapPrm"], 16) == 0
        assert fields["NoNewPrivs"].strip() == "1"  # allowPrivilegeEscalation: false
        assert fields["Seccomp"].strip() == "2"  # seccompProfile RuntimeDefault: filter mode
    denied = played.exec("sh", "-c", "touch /app/x", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert played.exec("sh", "-c", "touch /tmp/x /run/bootstrap/x && rm /tmp/x /run/bootstrap/x").returncode == 0
    assert status(played)["state"] == "ready"


def network_counters(played: Played) -> tuple[float, float]:
    """bootstrap_network_{receive,transmit}_bytes_total of the pod's interface, from /metrics."""
    with urllib.request.urlopen(f"http://{played.ip()}:{AGENT_HTTP_PORT}/metrics", timeout=30) as response:
        text = response.read().decode()
    found = {}
    for kind in ("receive", "transmit"):
        values = [float(m.group(1)) for m in re.finditer(
            rf'^bootstrap_network_{kind}_bytes_total{{interface="(?!lo")[^"]+"}} (\S+)$', text, re.M)]
        assert len(values) == 1, (kind, text[-2000:])  # the pod's one interface (eth0); no loopback
        found[kind] = values[0]
    return found["receive"], found["transmit"]


def test_network_bytes_follow_real_traffic(played: Played) -> None:
    rx0, tx0 = network_counters(played)
    sent = received = 0
    for n in range(200):
        with socket.create_connection((played.ip(), 8080), timeout=30) as conn:
            request = f"GET /?n={n} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n".encode()
            conn.sendall(request)
            sent += len(request)
            while chunk := conn.recv(65536):
                received += len(chunk)
    rx1, tx1 = network_counters(played)
    # Every byte we sent arrived on the pod's interface, every byte we got left it (plus headers,
    # handshakes and the first scrape's answer, so at least as many).
    assert rx1 - rx0 >= sent > 0
    assert tx1 - tx0 >= received > 0
    # ... and not wildly more: the counters are the pod's, not the node's.
    assert rx1 - rx0 < sent + 200 * 1000 + 100_000


def test_node_logs_serves_the_pods_log_file_over_http(played: Played, node_logs: NodeLogs) -> None:
    base = f"http://{node_logs.ip}:{node_logs.port}"
    wait_until(lambda: _get(f"{base}/healthz")[0] == 200, timeout=60, interval=0.5)
    path = f"hello-jar/{played.ip()}/hello.log"
    code, body, content_type = _get(f"{base}/{path}")
    assert code == 200 and content_type.startswith("text/plain")
    on_host = (played.log_root / path).read_bytes()
    assert body == on_host[:len(body)] and len(body) > 0  # the app may have appended meanwhile
    code, listing, _ = _get(f"{base}/hello-jar/")
    assert code == 200 and f'href="{played.ip()}/"'.encode() in listing
    request = urllib.request.Request(f"{base}/{path}", data=b"x", method="POST")
    assert _status(request) == 403  # read-only: limit_except GET
    assert _get(f"{base}/../../etc/passwd")[0] in (400, 404)


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""
    except OSError:
        return 0, b"", ""


def _status(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


# --- what the kubelet does ------------------------------------------------------------------

def test_stopped_app_fails_liveness_and_the_container_is_restarted(played: Played, kubelet: Kubelet) -> None:
    before = len([r for r in records(played) if r["event"] == "start"])
    since = time.time()
    os.kill(app_host_pid(played), signal.SIGSTOP)
    probe = played.spec["livenessProbe"]
    grace = played.pod_spec["terminationGracePeriodSeconds"]
    budget = (probe["failureThreshold"] + 2) * probe["periodSeconds"] + grace + 60
    assert kubelet.wait_for(lambda: kubelet.first("restarted", "liveness", after=since) is not None, budget), kubelet.events
    failed = kubelet.first("liveness", "Failure", after=since)
    assert failed is not None
    # the stopped JVM ignored the agent's SIGTERM, so the agent killed it at its stop timeout
    exit_record = [r for r in records(played) if r["event"] == "exit"][-1]
    assert (exit_record["cause"], exit_record["reason"]) == ("killed-after-timeout", "liveness-failed"), exit_record
    assert re.match(r"the app \(pid \d+\) is stopped$", exit_record["live_failure"]), exit_record
    assert played.termination_log.read_text().startswith(
        f"hello-jar: liveness failed: {exit_record['live_failure']}; killed-after-timeout")
    wait_until(lambda: len([r for r in records(played) if r["event"] == "start"]) == before + 1, timeout=60)
    restarted = [r for r in records(played) if r["event"] == "start"][-1]
    assert restarted["ip"] == played.ip() and (played.log_root / "hello-jar" / restarted["ip"]).is_dir()
    assert kubelet.wait_for(lambda: kubelet.first("readiness", "Success", after=failed.at) is not None, 120), kubelet.events
    # the liveness worker resets to Success when its next tick sees the new container
    assert kubelet.wait_for(lambda: kubelet.results["liveness"] == "Success", probe["periodSeconds"] * 2 + 5), kubelet.events


def test_delete_runs_prestop_then_a_graceful_stop_within_the_grace_period(played: Played, kubelet: Kubelet) -> None:
    assert kubelet.wait_for(kubelet.ready, 120)
    grace = played.pod_spec["terminationGracePeriodSeconds"]
    began = time.monotonic()
    kubelet.delete()
    took = time.monotonic() - began
    assert (played.log_root / ".prestop-ran").read_text() == "prestop\n"
    state = played.inspect()["State"]
    assert not state["Running"]
    assert took < grace, (took, grace)
    exit_record = records(played)[-1]
    assert (exit_record["event"], exit_record["cause"]) == ("exit", "stopped")
    # The JVM exits 143 on SIGTERM; the container exits with that code after the image's
    # BOOTSTRAP_EXIT_REMAP (the generated bootstrap.yaml may map 143 to 0).
    assert exit_record["raw_exit_code"] == 143
    assert state["ExitCode"] == exit_record["exit_code"]
    assert played.termination_log.read_text().startswith("hello-jar: stopped, exit code 143")
