"""`dockerfile-gen pod OUT_DIR --env ENV`: the app's pod on this machine, as a cluster would run it.

The chart is rendered with the values `dockerfile-gen app` wrote to OUT_DIR (chart_render.py),
adapted for `podman kube play` (play.py) and played; the kubelet stand-in (kubelet.py) runs the
rendered probes, and every state change is printed with the agent's reason (watch.py). On Ctrl-C or
SIGTERM the pod gets the rendered stop (preStop, SIGTERM, SIGKILL at the grace period) and
everything made is removed (local.py), also after a failure half-way.

Exit codes: 0 after a stop on Ctrl-C or SIGTERM, or with --until-ready once the pod is ready (it is
then stopped and removed); 1 when it is not ready in time or the agent's state turned `failed` (the
reason is the last line on stderr), or podman failed; 65 for a bad OUT_DIR, environment or image;
69 when podman or helm-python-sdk is missing.
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from dockerfile_gen.errors import GenError
from dockerfile_gen.pod.local import LocalPod
from dockerfile_gen.pod.podman import Podman
from dockerfile_gen.pod.watch import Watch

EXIT_NOT_READY = 1
LOG_LINES = 15  # of the container's output, printed when it does not get ready
NODE_LOG_ROOT_MODE = 0o3753  # owner root; others may make their directory in it, not list it (the node-logs chart's)


@dataclass(frozen=True)
class PodOptions:
    out_dir: Path
    env: str
    image: str | None = None
    until_ready: float | None = None  # seconds; None: run until Ctrl-C or SIGTERM
    log_root: Path | None = None  # kept; None: a directory of the run's own, removed at the end
    network: str | None = None


class StopRequest:
    """SIGINT and SIGTERM only set a flag: the step in progress (a podman call) finishes, then the
    pod is stopped in order. A second signal changes nothing but is answered."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.event = threading.Event()
        self.signal = 0

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            self.say("already stopping: the pod is removed when its stop ends")
            return
        self.signal = signum
        self.event.set()

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def requested(self) -> bool:
        return self.event.is_set()


class Clock:
    """Lines on stdout, each with the seconds since the command started."""

    def __init__(self) -> None:
        self.began = time.monotonic()

    def say(self, text: str) -> None:
        print(f"{time.monotonic() - self.began:7.1f}s  {text}", flush=True)


def run(options: PodOptions, environ: Mapping[str, str]) -> int:
    clock = Clock()
    stop = StopRequest(clock.say)
    podman = Podman(environ)
    work = Path(tempfile.mkdtemp(prefix="dockerfile-gen-pod-"))
    pod = LocalPod(podman, work, clock.say)
    with stop.installed():
        try:
            return _run(options, pod, stop, clock)
        finally:
            pod.remove()


def _run(options: PodOptions, pod: LocalPod, stop: StopRequest, clock: Clock) -> int:
    log_root = options.log_root or pod.work / "logs"
    if not log_root.exists():  # as a node's log root is set up: apps that run as other users make their dirs
        log_root.mkdir(parents=True)
        os.chmod(log_root, NODE_LOG_ROOT_MODE)
    rendered = pod.render(options.out_dir, options.env, options.image, log_root)
    dropped = ", ".join(rendered.playable.dropped_env)
    clock.say(f"rendered the chart as release {rendered.release} with {rendered.image}; grace period "
              f"{rendered.grace:g}s; logs under {log_root}" + ("" if options.log_root else " (removed at the end)")
              + (f"; podman kube play cannot set {dropped}" if dropped else ""))
    if stop.requested:
        return _interrupted(stop, options)
    pod.play(options.network)
    clock.say(f"played pod {pod.pod} (container {pod.container})")
    watch = Watch(pod, clock.say)
    assert pod.kubelet is not None
    pod.kubelet.on_event = watch.hear
    pod.kubelet.start()
    deadline = time.monotonic() + options.until_ready if options.until_ready is not None else None
    while not stop.requested:
        status = watch.step(0.25)
        if deadline is None:
            continue
        if watch.ready:
            return 0
        if status.get("state") == "failed" or time.monotonic() >= deadline:
            return _not_ready(pod, options, status or pod.status())
    return _interrupted(stop, options)


def _not_ready(pod: LocalPod, options: PodOptions, status: dict[str, object]) -> int:
    for line, count in _runs(pod.logs(LOG_LINES)):
        print(f"  | {line}" + (f"  (x{count})" if count > 1 else ""), file=sys.stderr)
    if status:
        why = f"the agent says {status.get('state')}: {status.get('detail')}"
    else:
        why = pod.exited() or "the agent has written no status"
    when = "not ready" if status.get("state") == "failed" else f"not ready within {options.until_ready:g}s"
    print(f"dockerfile-gen: error: pod {pod.pod} {when}: {why}", file=sys.stderr)
    return EXIT_NOT_READY


def _runs(lines: list[str]) -> list[tuple[str, int]]:
    """Consecutive equal lines (a crash loop's) as one, with their count."""
    out: list[tuple[str, int]] = []
    for line in lines:
        if out and out[-1][0] == line:
            out[-1] = (line, out[-1][1] + 1)
        else:
            out.append((line, 1))
    return out


def _interrupted(stop: StopRequest, options: PodOptions) -> int:
    name = signal.Signals(stop.signal).name if stop.signal else "a signal"
    print(f"dockerfile-gen: pod: {name}: stopping", file=sys.stderr)
    return 128 + stop.signal if options.until_ready is not None and stop.signal else 0


def check_options(options: PodOptions) -> None:
    if not options.out_dir.is_dir():
        raise GenError(f"{options.out_dir} is not a directory: give the output directory of dockerfile-gen app", "pod")
    if options.until_ready is not None and options.until_ready <= 0:
        raise GenError(f"{options.until_ready:g} must be a number of seconds above 0", "--until-ready")
