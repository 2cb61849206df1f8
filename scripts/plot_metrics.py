"""Draws docs/metrics.png: what Prometheus scrapes from a running `bootstrap run`.

In a temporary directory it starts Debian's Prometheus (127.0.0.1 only, 1 s scrape interval) and
one `bootstrap run` with BOOTSTRAP_HTTP_PORT set (as PID 1 of a new PID namespace when root, else
as a subreaper). The app is a small Python HTTP server whose /health is the readiness check
(BOOTSTRAP_READY_HTTP, BOOTSTRAP_READY_PERIOD=1). On its own clock it starts slowly, burns CPU,
grows memory and threads, starts a child process, writes its log, and answers 503 twice for a few
seconds; this script forwards it SIGHUP and SIGUSR1 through the agent. After about 80 s the script
reads the series back with /api/v1/query_range and plots them with matplotlib (Agg).

    .venv/bin/python scripts/plot_metrics.py [--out docs/metrics.png] [--seconds 80] [--keep]
    .venv/bin/python scripts/plot_metrics.py --replot /tmp/bootstrap-metrics-*/series.json  # style only

Needs `prometheus` (deps/apt-metrics.txt) and matplotlib (deps/pip-docs.txt). Everything it
starts is killed at the end, also on error or Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullLocator  # noqa: E402

from tests.support.agent import BOOTSTRAP, Agent, app_tree  # noqa: E402
from tests.support.prometheus import Prometheus, free_port, get  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

# The demo app. Its timeline is in seconds since it started (the agent spawns it at once).
APP = r'''import http.server, os, signal, subprocess, sys, threading, time
port, logfile = int(sys.argv[1]), sys.argv[2]
T0 = time.monotonic()
def now(): return time.monotonic() - T0
log = open(logfile, "a", buffering=1)
def say(text): log.write(f"{time.strftime('%H:%M:%S')} t={now():5.1f} {text}\n")
FLAPS = ((30, 36), (58, 61))           # /health answers 503 in these windows
CPU = ((12, 24, 0.3), (24, 42, 0.9))    # (from, to, share of one core) for the burner thread
def healthy():
    return not any(a <= now() < b for a, b in FLAPS)
def on_signal(sig, _frame): say(f"got {signal.Signals(sig).name}: reloading")
signal.signal(signal.SIGHUP, on_signal)
signal.signal(signal.SIGUSR1, on_signal)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
def burner():
    while True:
        share = next((s for a, b, s in CPU if a <= now() < b), 0.0)
        start = time.monotonic()
        while time.monotonic() - start < share * 0.1:
            pass
        time.sleep(0.1 * (1 - share))
threading.Thread(target=burner, daemon=True).start()
def grower():
    ballast, stop = [], threading.Event()
    while now() < 70:
        if 15 <= now() < 55:
            ballast.append(bytearray(os.urandom(1 << 20) * 4))   # 4 MiB a second, touched
            if len(ballast) % 3 == 0:                            # and one idle thread every 3 s
                threading.Thread(target=stop.wait, daemon=True).start()
            say(f"cache holds {len(ballast) * 4} MiB")
        time.sleep(1)
    ballast.clear()
    stop.set()
    say("cache dropped, workers stopped")
threading.Thread(target=grower, daemon=True).start()
def helper():
    time.sleep(44)
    say("spawning a 15 s helper process")
    subprocess.run(["sh", "-c", "trap '' HUP USR1; exec sleep 15"])  # it shares the forwarded signals
threading.Thread(target=helper, daemon=True).start()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if healthy() else 503
        self.send_response(code); self.end_headers(); self.wfile.write(b"ok\n" if code == 200 else b"busy\n")
        say(f"GET {self.path} {code} " + "x" * 200)
    def log_message(self, *args): pass
say("starting (slowly)")
time.sleep(4)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
say("listening")
server.serve_forever()
'''

# (seconds after the agent started, signal) sent to the agent, which forwards them to the app.
SIGNALS = ((20, signal.SIGHUP), (38, signal.SIGUSR1), (48, signal.SIGUSR1), (66, signal.SIGHUP))
RATE = "[5s]"
MIB = 1024 * 1024


def run(out: Path, seconds: float, keep: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="bootstrap-metrics-"))
    prometheus: Prometheus | None = None
    agent: Agent | None = None
    try:
        env = app_tree(root)
        home = Path(env["APP_HOME"])
        (home / "app.py").write_text(APP)
        app_port, agent_port = free_port(), free_port()
        env |= {"BOOTSTRAP_HTTP_PORT": str(agent_port), "BOOTSTRAP_READY_HTTP": f"http://127.0.0.1:{app_port}/health",
                "BOOTSTRAP_READY_PERIOD": "1", "BOOTSTRAP_READY_TIMEOUT": "60", "BOOTSTRAP_DRAIN_SECONDS": "1",
                "APP_NAME": "orders"}
        prometheus = Prometheus(root / "prometheus", agent_port, {"namespace": "shop", "pod": "orders-7d9f"})
        # Prometheus' service discovery hands out its first targets after about 5 s: wait for the first
        # scrape (up == 0, nothing listens yet) so the plot starts with the agent.
        wait_until(lambda: prometheus.query("up"), timeout=30, interval=0.2)
        print(f"prometheus on 127.0.0.1:{prometheus.port}, agent metrics on 127.0.0.1:{agent_port}, in {root}")
        agent = Agent([BOOTSTRAP, "run", "--", sys.executable, str(home / "app.py"), str(app_port),
                       str(home / "logs" / "app.log")], env, pid1=os.geteuid() == 0 and shutil.which("unshare") is not None)
        t0 = time.time()
        wait_until(lambda: get(agent_port, "/metrics"), timeout=15, interval=0.05)
        pending = list(SIGNALS)
        while (elapsed := time.time() - t0) < seconds:
            if agent.proc.poll() is not None:
                raise RuntimeError(f"bootstrap exited with {agent.proc.returncode}: {agent.err[-10:]}")
            while pending and pending[0][0] <= elapsed:
                _, sig = pending.pop(0)
                agent.signal(sig)
                print(f"t={elapsed:4.1f}s sent {sig.name} to the agent")
            time.sleep(0.2)
        time.sleep(2)  # the last scrapes land
        series = collect(prometheus, t0 - 2, time.time())
        (root / "series.json").write_text(json.dumps({"t0": t0, "panels": series}))
        plot(series, t0, out)
        print(f"wrote {out}")
    finally:
        if agent is not None:
            stop(agent)
        if prometheus is not None:
            prometheus.stop()
        if keep:
            print(f"left {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def stop(agent: Agent) -> None:
    """SIGTERM as the kubelet sends it, then SIGKILL. As PID 1 of its namespace the agent takes the app
    with it; as a subreaper the app's own process group is killed too."""
    app = agent.status().get("pid") if not agent.pid1 else None
    try:
        if agent.proc.poll() is None:
            agent.signal(signal.SIGTERM)
            agent.wait(15)
    except Exception:  # noqa: BLE001 -- whatever went wrong, SIGKILL follows
        pass
    agent.kill()
    if isinstance(app, int) and app > 1:
        try:
            os.killpg(app, signal.SIGKILL)
        except OSError:
            pass


Q = 'check="http"'
# (title with unit, where the numbers come from, [(legend, PromQL, scale)])
PANELS: list[tuple[str, str, list[tuple[str, str, float]]]] = [
    ("Ready (1 = ready)", "bootstrap_ready", [("ready", "bootstrap_ready", 1)]),
    ("App CPU (cores)", f"rate(bootstrap_app_cpu_seconds_total{RATE})",
     [("cores", f"rate(bootstrap_app_cpu_seconds_total{RATE})", 1)]),
    ("App resident memory (MiB)", "bootstrap_app_resident_memory_bytes",
     [("RSS", "bootstrap_app_resident_memory_bytes", 1 / MIB)]),
    ("App threads, processes, open fds", "bootstrap_app_threads, _processes, _open_fds",
     [("threads", "bootstrap_app_threads", 1), ("processes", "bootstrap_app_processes", 1),
      ("open fds", "bootstrap_app_open_fds", 1)]),
    ("HTTP readiness check duration (ms)", f"bootstrap_check_duration_seconds{{{Q}}}, log scale",
     [("p50", f"histogram_quantile(0.5, rate(bootstrap_check_duration_seconds_bucket{{{Q}}}{RATE}))", 1000),
      ("p99", f"histogram_quantile(0.99, rate(bootstrap_check_duration_seconds_bucket{{{Q}}}{RATE}))", 1000)]),
    ("HTTP readiness checks (per second)", "bootstrap_check_duration_seconds_count, _failures_total; log",
     [("run", f"rate(bootstrap_check_duration_seconds_count{{{Q}}}{RATE})", 1),
      ("failed", f"rate(bootstrap_check_failures_total{{{Q}}}{RATE})", 1)]),
    ("Signals forwarded to the app (total)", "bootstrap_signals_forwarded_total by signal",
     [("{signal}", "bootstrap_signals_forwarded_total", 1)]),
    ("Log directory size (KiB)", "bootstrap_log_dir_bytes (the agent walks it at most every 60 s)",
     [("bytes", "bootstrap_log_dir_bytes", 1 / 1024)]),
    ("Became ready (total)", "bootstrap_ready_transitions_total (more than 1: it flapped)",
     [("to ready", "bootstrap_ready_transitions_total", 1)]),
]


def collect(prometheus: Prometheus, start: float, end: float) -> list[list[tuple[str, list[float], list[float]]]]:
    """For each panel, its lines: (legend, times, values), from /api/v1/query_range at a 1 s step."""
    panels = []
    for _, _, queries in PANELS:
        lines = []
        for legend, expr, scale in queries:
            data: Any = prometheus.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step="1")
            for result in data["result"]:
                times = [float(t) for t, _ in result["values"]]
                values = [float(v) * scale for _, v in result["values"]]
                lines.append((legend.format(**result["metric"]), times, values))
        panels.append(lines)
    return panels


def spans(times: list[float], values: list[float]) -> list[tuple[float, float]]:
    """The [from, to) windows where a 0/1 series is 0."""
    found: list[tuple[float, float]] = []
    begin = None
    for t, v in zip(times, values):
        if v == 0 and begin is None:
            begin = t
        elif v != 0 and begin is not None:
            found.append((begin, t))
            begin = None
    if begin is not None:
        found.append((begin, times[-1]))
    return found


def plot(panels: list[list[tuple[str, list[float], list[float]]]], t0: float, out: Path) -> None:
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold"})
    fig, axes = plt.subplots(3, 3, figsize=(14, 9), dpi=100, sharex=True)
    ready = panels[0][0] if panels[0] else None
    not_ready = spans([t - t0 for t in ready[1]], ready[2]) if ready else []
    for ax, (title, source, _), lines in zip(axes.flat, PANELS, panels):
        for a, b in not_ready:
            ax.axvspan(a, b, color="tab:red", alpha=0.10, lw=0)
        for sig_at, _ in SIGNALS:
            ax.axvline(sig_at, color="grey", lw=0.6, ls=":")
        for legend, times, values in lines:
            ax.step([t - t0 for t in times], values, where="post", label=legend, lw=1.6)
        ax.set_title(title, loc="left", pad=15)
        ax.text(0, 1.015, source, transform=ax.transAxes, fontsize=7.5, family="monospace", color="dimgrey",
                va="bottom", in_layout=False)
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
        if len(lines) > 1:
            ax.legend(loc="upper left", fontsize=8, frameon=False)
        if not lines:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    axes[0][0].set_ylim(-0.05, 1.15)
    # Start-up checks run every 25 ms, later ones once a second; the first one imports `requests`.
    for i, ticks in ((4, [0.5, 1, 2, 5, 10, 20, 50, 100, 200]), (5, [0.1, 0.3, 1, 3, 10, 30])):
        ax = axes.flat[i]
        ax.set_yscale("log")
        top = max([v for _, _, values in panels[i] for v in values if math.isfinite(v)] + [ticks[1]])
        ticks = [t for t in ticks if t <= top * 1.5]
        ax.set_ylim(ticks[0], top * 1.5)
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.yaxis.set_minor_locator(NullLocator())
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    for i in (0, 3, 6, 8):  # counts: whole numbers on the axis
        axes.flat[i].yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[-1]:
        ax.set_xlabel("seconds since the agent started")
    for ax in axes.flat[1:]:
        ax.set_ylim(top=max(ax.get_ylim()[1], 1.0))
    fig.suptitle("bootstrap run, scraped by Prometheus every second (shaded: not ready; dotted: a signal sent "
                 "to the agent)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "metrics.png")
    parser.add_argument("--seconds", type=float, default=80.0, help="how long the app runs (default 80)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (and its series.json)")
    parser.add_argument("--replot", type=Path, metavar="SERIES_JSON", help="only plot a kept series.json again")
    args = parser.parse_args()
    if args.replot:
        data = json.loads(args.replot.read_text())
        plot(data["panels"], data["t0"], args.out)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` kills what was started
    if shutil.which("prometheus") is None:
        print("plot_metrics: prometheus is not installed (deps/apt-metrics.txt, scripts/install-deps.sh)",
              file=sys.stderr)
        return 1
    run(args.out, args.seconds, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
