"""The probes as the kubelet sees them (bench/run.py section 6): readiness lag with the chart's
default probes, the agent's CPU per probe, and what both mean for a rolling update.

- *Lag after*: measured. The chart is rendered with its defaults (helm-python-sdk), and the kubelet
  stand-in of the pod tier (dockerfile_gen.pod.kubelet) runs the rendered probes against a real agent;
  the app becomes ready (a file its readiness command tests appears) a random time after the spawn,
  and the lag runs from that moment to the stand-in taking a readiness Success.
- *Lag before*: the same worker rules on a virtual clock with the old defaults (startup
  `bootstrap probe --startup` every 30 s from the container's start, passing only once the app has
  been ready; its Success triggers readiness at once). Measuring it for real would take 30 s a sample.
- *CPU*: the probe-ports thread's process (the checker) CPU (utime + stime) over many connects; the
  kubelet's side of a tcpSocket probe is the kubelet's, as the exec probes' runtime cost was not
  counted against them either (it is shown beside them: `podman exec`).
- *Rollout*: 20 replicas, maxSurge 25 % (5 pods a batch), maxUnavailable 0: four batches, each
  waiting for its slowest pod: the app's own start, plus the largest of five lags drawn from the
  distributions above.
"""
from __future__ import annotations

import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dockerfile_gen.pod.kubelet import ContainerState, Kubelet  # noqa: E402

LIVE_PORT, READY_PORT = 23201, 23202  # the bench's own ports (the chart's defaults are 9931/9932)
OLD_DEFAULTS = {"startup": 30.0, "readiness": 5.0, "liveness": 30.0}  # the exec-probe chart before
APP_START_SECONDS = 8.0  # a JVM that is ready 8 s after its container starts (the example)
REPLICAS, SURGE = 20, 5


def rendered_defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    """The chart's default probes (ports moved to the bench's range): (container, pod spec)."""
    from tests.support import chart as chartlib

    values = {"image": {"repository": "bench/app", "tag": "1"}, "app": {"env": "prod"},
              "agent": {"livePort": LIVE_PORT, "readyPort": READY_PORT}}
    rendered = chartlib.render(chartlib.MICROSERVICE, values)
    return rendered.container, rendered.pod_spec


class LocalRuntime:
    """A local `bootstrap run` seen as a container: its pid is the container id."""

    def __init__(self, pid: int, started_at: float) -> None:
        self.pid, self.started_at = pid, started_at

    def state(self) -> ContainerState:
        try:
            os.kill(self.pid, 0)
            running = True
        except ProcessLookupError:
            running = False
        return ContainerState(str(self.pid), running, self.started_at)

    def exec(self, argv: list[str], timeout: float) -> int:
        return subprocess.run(argv, timeout=timeout, check=False).returncode

    def address(self) -> str:
        return "127.0.0.1"

    def kill(self, grace: float) -> None:
        os.kill(self.pid, signal.SIGTERM)

    def start(self) -> None:
        raise NotImplementedError("the benchmark never restarts")


def measure_lag(bench: Any, runs: int, spawn: Any, stop: Any) -> list[float]:
    """Seconds from the app being ready to the stand-in kubelet taking readiness Success."""
    container, pod_spec = rendered_defaults()
    flag = bench.work / "ready-flag"
    lags = []
    for _ in range(runs):
        bench.reset()
        flag.unlink(missing_ok=True)
        env = bench.env(BOOTSTRAP_LIVE_PORT=str(LIVE_PORT), BOOTSTRAP_READY_PORT=str(READY_PORT),
                        BOOTSTRAP_READY_CMD=f"test -f {flag}")
        started = time.time()
        pid = spawn([bench.bootstrap, "run", "--", "/bin/sleep", "1000"], env)
        kubelet = Kubelet(LocalRuntime(pid, started), container, pod_spec)
        kubelet.start()
        try:
            time.sleep(random.uniform(0.3, 2.3))  # the app's start-up, at a random phase of the ticks
            ready_at = time.time()
            flag.touch()
            if not kubelet.wait_for(kubelet.ready, 30):
                raise RuntimeError(f"the stand-in kubelet never saw Ready: {kubelet.events}")
            seen = kubelet.first("readiness", "Success")
            assert seen is not None
            lags.append(seen.at - ready_at)
        finally:
            kubelet.close()
            stop(pid)
    return lags


def simulate_old_lag(samples: int, seed: int = 11) -> list[float]:
    """The old exec defaults on a virtual clock: the startup probe (`bootstrap probe --startup`,
    every 30 s from the container's start) passes at its first tick after the app is ready; its
    Success triggers a readiness probe at once (the kubelet's status sync), and `cat ready` passes.
    The exec probes' own run time (tens of ms, section 5) is left out: the lower bound."""
    rng = random.Random(seed)
    period = OLD_DEFAULTS["startup"]
    out = []
    for _ in range(samples):
        ready = rng.uniform(0.3, 120.0)  # any start-up time: what matters is its phase in the ticks
        out.append(math.ceil(ready / period) * period - ready)
    return out


def rollout_seconds(lags: list[float], trials: int = 20000, seed: int = 20) -> list[float]:
    rng = random.Random(seed)
    batches = math.ceil(REPLICAS / SURGE)
    return [sum(APP_START_SECONDS + max(rng.choice(lags) for _ in range(SURGE)) for _ in range(batches))
            for _ in range(trials)]


def helper_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_probe_cpu(bench: Any, connects: int, spawn: Any, stop: Any, children: Any) -> dict[str, float]:
    """CPU of the probe-ports helper per readiness and per liveness connect, and while idle."""
    bench.reset()
    env = bench.env(BOOTSTRAP_LIVE_PORT=str(LIVE_PORT), BOOTSTRAP_READY_PORT=str(READY_PORT))
    pid = spawn([bench.bootstrap, "run", "--", "/bin/sleep", "1000"], env)
    try:
        app = bench.wait_state("ready")["pid"]
        helper = _probe_helper(bench, pid, app, children)
        out: dict[str, float] = {}
        time.sleep(0.5)
        before = helper_cpu_seconds(helper)
        time.sleep(10.0)
        out["idle_per_hour"] = (helper_cpu_seconds(helper) - before) * 360
        for kind, port in (("readiness", READY_PORT), ("liveness", LIVE_PORT)):
            before, began = helper_cpu_seconds(helper), time.monotonic()
            for _ in range(connects):
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    pass
            out[f"{kind}_ms"] = (helper_cpu_seconds(helper) - before) * 1000 / connects
            out[f"{kind}_wall_ms"] = (time.monotonic() - began) * 1000 / connects
        return out
    finally:
        stop(pid)


def _probe_helper(bench: Any, pid: int, app: int, children: Any) -> int:
    counters = bench.run_dir / "supervisor.json"
    import json

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            helper = json.loads(counters.read_text())["helper_pids"]["readiness checker"]
        except (OSError, ValueError, KeyError):
            helper = None
        if helper in children(pid):
            return int(helper)
        time.sleep(0.05)
    raise RuntimeError("no readiness checker found")


def podman_exec_cost(runs: int) -> dict[str, float] | None:
    """Wall and CPU of `podman exec CTR cat FILE` (podman's own CPU plus its waited children, a lower
    bound: conmon and runc are not its children), against a container of the debootstrap root from
    the container tier's cache. None when that cache or podman is missing."""
    import shutil
    import tempfile

    tarball = ROOT / ".cache" / "container" / "debian-bookworm-minbase-python3.tar"
    if not tarball.exists() or not shutil.which("podman"):
        return None
    work = Path(tempfile.mkdtemp(prefix="i11-bench-podman-", dir="/var/tmp"))
    (work / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n'
        f'cgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "{work}/libpod"\n'
        f'[network]\nnetwork_config_dir = "{work}/networks"\n')
    (work / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{work}/graph"\nrunroot = "{work}/run"\n')
    env = {**os.environ, "CONTAINERS_CONF": str(work / "containers.conf"),
           "CONTAINERS_STORAGE_CONF": str(work / "storage.conf"), "TMPDIR": str(work)}
    podman = shutil.which("podman") or "podman"
    try:
        subprocess.run([podman, "import", "--quiet", str(tarball), "localhost/debian:bookworm"], env=env, check=True,
                       capture_output=True)
        subprocess.run([podman, "run", "-d", "--name", "i11-bench-exec", "--network", "none", "localhost/debian:bookworm",
                        "sleep", "1000"], env=env, check=True, capture_output=True)
        walls, cpus = [], []
        for n in range(runs + 3):
            began = time.perf_counter()
            child = subprocess.Popen([podman, "exec", "i11-bench-exec", "cat", "/etc/hostname"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = status
            if n >= 3:
                walls.append((time.perf_counter() - began) * 1000)
                cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
        return {"wall_ms": statistics.median(walls), "cpu_ms": statistics.median(cpus)}
    finally:
        subprocess.run([podman, "rm", "--force", "--time", "0", "i11-bench-exec"], env=env, capture_output=True)
        subprocess.run([podman, "system", "reset", "--force"], env=env, capture_output=True)
        subprocess.run(["umount", "-R", str(work / "graph")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
