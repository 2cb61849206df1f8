"""A kubelet stand-in: runs a container's rendered probes with the kubelet's rules, and stops it the
kubelet's way. Used by `dockerfile-gen pod` and the pod tier (against a pod that `podman kube play`
runs) and by the benchmark (against a local agent), through a small `Runtime` interface; `on_event`
hears every probe result taken and every kill, restart and delete.

The rules, as in the kubelet's prober workers (pkg/kubelet/prober/worker.go):
- one worker per probe; each probes once when it starts, then on every tick of a fixed-rate ticker
  of `periodSeconds` (a tick missed while a probe runs is dropped, as Go's ticker drops it);
- nothing is probed before `initialDelaySeconds` after the container started;
- readiness starts as Failure, liveness as Success, startup as Unknown; a result is taken only
  after `successThreshold` / `failureThreshold` equal results in a row;
- readiness and liveness do not probe until the startup probe has succeeded for this container;
  the startup probe stops probing once it has. The startup Success makes the kubelet sync the pod,
  and its status update triggers a readiness probe at once (prober_manager.go, UpdatePodStatus);
- a liveness or startup Failure kills the container (preStop, then SIGTERM, then SIGKILL at
  `terminationGracePeriodSeconds`) and restarts it (restartPolicy Always); the worker holds until
  it sees a new container;
- on delete, liveness and startup stop probing; the container gets preStop, SIGTERM, SIGKILL at
  the grace period.
The kubelet's start-up jitter (a random part of a period before the first probe, only while the
kubelet itself has just started) is left out: a pod is normally created long after the kubelet.
"""
from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

SUCCESS, FAILURE, UNKNOWN = "Success", "Failure", "Unknown"
INITIAL = {"readiness": FAILURE, "liveness": SUCCESS, "startup": UNKNOWN}
KEYS = {"startup": "startupProbe", "readiness": "readinessProbe", "liveness": "livenessProbe"}


@dataclass(frozen=True)
class ContainerState:
    """What the kubelet's status manager knows: an id per started container, and whether it runs."""

    container_id: str
    running: bool
    started_at: float  # epoch seconds


class Runtime(Protocol):
    def state(self) -> ContainerState: ...

    def exec(self, argv: list[str], timeout: float) -> int: ...

    def address(self) -> str: ...

    def kill(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after grace seconds (the preStop hook has already run)."""

    def start(self) -> None:
        """Starts a new container (restartPolicy Always)."""


@dataclass(frozen=True)
class Probe:
    kind: str
    handler: dict[str, Any]
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def from_spec(cls, kind: str, spec: dict[str, Any]) -> Probe:
        handler = {k: v for k, v in spec.items() if k in ("exec", "tcpSocket", "httpGet", "grpc")}
        assert len(handler) == 1, f"{kind}: exactly one handler expected, got {sorted(handler)}"
        # The API server's defaults: period 10, timeout 1, thresholds 1 and 3.
        return cls(kind, handler, float(spec.get("initialDelaySeconds", 0)), float(spec.get("periodSeconds", 10)),
                   float(spec.get("timeoutSeconds", 1)), int(spec.get("successThreshold", 1)),
                   int(spec.get("failureThreshold", 3)))


@dataclass
class Event:
    at: float  # epoch seconds
    what: str
    detail: str = ""


@dataclass
class Kubelet:
    """Probes one container of a pod spec (the rendered Deployment's pod template)."""

    runtime: Runtime
    container: dict[str, Any]
    pod_spec: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)  # probe kind -> the last result taken
    probed: dict[str, int] = field(default_factory=dict)  # probe kind -> probes run
    deleting: bool = False
    on_event: Callable[[Event], None] | None = None  # called outside the lock, from the worker threads

    def __post_init__(self) -> None:
        self.probes = {k: Probe.from_spec(k, self.container[key]) for k, key in KEYS.items() if key in self.container}
        self.ports = {p["name"]: int(p["containerPort"]) for p in self.container.get("ports", []) if "name" in p}
        self.grace = float(self.pod_spec.get("terminationGracePeriodSeconds", 30))
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._container_id = ""
        self._started: dict[str, bool] = {}  # container id -> startup probe succeeded
        self._workers: list[threading.Thread] = []
        self._triggers = {kind: threading.Event() for kind in self.probes}  # the worker's manual trigger
        self._killing = threading.Lock()

    # --- what the tests read ------------------------------------------------------------------

    def ready(self) -> bool:
        with self._lock:
            return self.results.get("readiness") == SUCCESS

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def first(self, what: str, detail: str | None = None, after: float = 0.0) -> Event | None:
        with self._lock:
            return next((e for e in self.events if e.what == what and e.at >= after
                         and (detail is None or e.detail == detail)), None)

    def note(self, what: str, detail: str = "") -> None:
        event = Event(time.time(), what, detail)
        with self._lock:
            self.events.append(event)
            self._lock.notify_all()
        if self.on_event is not None:
            self.on_event(event)

    # --- the prober workers -------------------------------------------------------------------

    def start(self) -> None:
        for probe in self.probes.values():
            worker = threading.Thread(target=self._run_worker, args=(probe,), name=f"kubelet-{probe.kind}", daemon=True)
            self._workers.append(worker)
            worker.start()

    def close(self) -> None:
        self._stop.set()
        for trigger in self._triggers.values():
            trigger.set()
        for worker in self._workers:
            worker.join(30)

    def _run_worker(self, probe: Probe) -> None:
        state = _WorkerState(probe)
        next_tick = time.monotonic() + probe.period
        while self._do_probe(probe, state):
            now = time.monotonic()
            while next_tick <= now:  # a fixed-rate ticker drops the ticks it could not deliver
                next_tick += probe.period
            trigger = self._triggers[probe.kind]
            trigger.wait(next_tick - now)  # the next tick, or a manual trigger
            trigger.clear()
            if self._stop.is_set():
                return

    def _do_probe(self, probe: Probe, w: _WorkerState) -> bool:
        if self._stop.is_set():
            return False
        try:
            c = self.runtime.state()
        except Exception as exc:  # the runtime is gone (pod removed): nothing to probe
            self.note("status-error", f"{probe.kind}: {exc}")
            return True
        if c.container_id != w.container_id:
            w.container_id, w.on_hold, w.last, w.run = c.container_id, False, None, 0
            self._set(probe.kind, INITIAL[probe.kind], c.container_id)
        if w.on_hold:
            return True
        if not c.running:
            self._set(probe.kind, FAILURE, c.container_id)
            return True
        if self.deleting and probe.kind in ("liveness", "startup"):
            self._set(probe.kind, SUCCESS, c.container_id)
            return False
        if time.time() - c.started_at < probe.initial_delay:
            return True
        started = "startup" not in self.probes or self._started.get(c.container_id, False)
        if started and probe.kind == "startup":
            return True
        if not started and probe.kind != "startup":
            return True
        result = self._probe_once(probe)
        with self._lock:
            self.probed[probe.kind] = self.probed.get(probe.kind, 0) + 1
        if result == w.last:
            w.run += 1
        else:
            w.last, w.run = result, 1
        threshold = probe.failure_threshold if result == FAILURE else probe.success_threshold
        if w.run < threshold:
            return True
        self._set(probe.kind, result, c.container_id)
        if probe.kind == "startup" and result == SUCCESS:
            self._started[c.container_id] = True
            if "readiness" in self._triggers and self.results.get("readiness") != SUCCESS:
                self._triggers["readiness"].set()
        if probe.kind in ("liveness", "startup") and result == FAILURE:
            w.on_hold, w.run = True, 0
            threading.Thread(target=self._restart, args=(probe.kind,), daemon=True).start()
        return True

    def _set(self, kind: str, result: str, container_id: str) -> None:
        event = Event(time.time(), kind, result)
        with self._lock:
            changed = self.results.get(kind) != result
            if changed:
                self.events.append(event)
            self.results[kind] = result
            self._lock.notify_all()
        if changed and self.on_event is not None:
            self.on_event(event)

    def _probe_once(self, probe: Probe) -> str:
        h = probe.handler
        try:
            if "tcpSocket" in h:
                port = self._port(h["tcpSocket"]["port"])
                with socket.create_connection((h["tcpSocket"].get("host") or self.runtime.address(), port),
                                              timeout=probe.timeout):
                    return SUCCESS
            if "exec" in h:
                return SUCCESS if self.runtime.exec(list(h["exec"]["command"]), probe.timeout) == 0 else FAILURE
            if "httpGet" in h:
                g = h["httpGet"]
                url = f"{g.get('scheme', 'HTTP').lower()}://{g.get('host') or self.runtime.address()}:{self._port(g['port'])}{g.get('path', '/')}"
                try:
                    with urllib.request.urlopen(url, timeout=probe.timeout) as response:
                        return SUCCESS if 200 <= response.status < 400 else FAILURE
                except urllib.error.HTTPError as exc:
                    return SUCCESS if 200 <= exc.code < 400 else FAILURE
        except (OSError, TimeoutError):
            return FAILURE
        raise AssertionError(f"unsupported probe handler {sorted(h)}")

    def _port(self, port: int | str) -> int:
        return self.ports[port] if isinstance(port, str) else int(port)

    # --- killing and restarting ------------------------------------------------------------------

    def run_pre_stop(self) -> float:
        """Runs the preStop exec hook (within the grace period); returns the seconds it took."""
        hook = self.container.get("lifecycle", {}).get("preStop", {}).get("exec")
        began = time.monotonic()
        if hook:
            self.runtime.exec(list(hook["command"]), self.grace)
        return time.monotonic() - began

    def kill_container(self, reason: str) -> None:
        with self._killing:
            self.note("killing", reason)
            spent = self.run_pre_stop()
            self.runtime.kill(max(2.0, self.grace - spent))  # the kubelet grants at least 2 s after preStop
            self.note("killed", reason)

    def _restart(self, kind: str) -> None:
        self.kill_container(f"{kind} probe failed")
        if not self.deleting:
            self.runtime.start()
            self.note("restarted", kind)

    def delete(self) -> None:
        """The pod is deleted: probes wind down, the container gets the rendered stop."""
        self.deleting = True
        self.note("deleting")
        self.kill_container("deleted")
        self.close()


@dataclass
class _WorkerState:
    probe: Probe
    container_id: str = ""
    on_hold: bool = False
    last: str | None = None
    run: int = 0
