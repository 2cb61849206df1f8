#!/usr/bin/env python3
"""Memory of the whole agent (PID 1 + readiness checker + HTTP helper, the app excluded) with the
metrics endpoint off and on, as PSS from /proc/PID/smaps_rollup. Not a test: a measurement.

    .venv/bin/python bench/memory_metrics.py [--runs 5]

"on, probes only" is the helper before any /metrics scrape (prometheus_client and psutil are
imported on the first scrape); "on, scraped" is after 10 scrapes.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BOOTSTRAP = str(Path(sys.executable).with_name("bootstrap"))
FIELDS = ("Pss", "Private_Clean", "Private_Dirty", "Rss")


def smaps(pid: int) -> dict[str, int]:
    """kB per field."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in FIELDS:
                out[key] = int(rest.split()[0])
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def wait_for(fn, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(fn)


def one_run(root: Path, mode: str) -> dict[str, dict[str, int]]:
    home = root / "app"
    (home / "conf.d" / "qa").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    (root / "bootstrap.yaml").write_text("")
    env = {"PATH": os.environ["PATH"], "APP_NAME": "demo", "APP_ENV": "qa", "APP_HOME": str(home),
           "BOOTSTRAP_LOG_ROOT": str(root / "logs"), "BOOTSTRAP_RUN_DIR": str(root / "run"),
           "BOOTSTRAP_CONFIG": str(root / "bootstrap.yaml"), "POD_IP": "10.0.0.7"}
    port = free_port()
    if mode != "off":
        env["BOOTSTRAP_HTTP_PORT"] = str(port)
    proc = subprocess.Popen([BOOTSTRAP, "run", "--", "sleep", "600"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        status = root / "run" / "status.json"
        wait_for(lambda: status.exists() and json.loads(status.read_text() or "{}").get("state") == "ready")
        app = json.loads(status.read_text())["pid"]
        helpers_wanted = 1 if mode == "off" else 2
        helpers = wait_for(lambda: [p for p in children(proc.pid) if p != app][:helpers_wanted]
                           if len([p for p in children(proc.pid) if p != app]) >= helpers_wanted else None)
        if mode != "off":
            wait_for(lambda: _get(port, "/ready"))
        if mode == "scraped":
            for _ in range(10):
                _get(port, "/metrics")
        time.sleep(1.0)  # let the checker settle into its ready-period loop
        return {"pid1": smaps(proc.pid), **{f"helper{i}": smaps(p) for i, p in enumerate(sorted(helpers))}}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _get(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            response.read()
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for mode in ("off", "probes", "scraped"):
        totals: dict[str, list[int]] = {f: [] for f in FIELDS}
        pid1: list[int] = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                sample = one_run(Path(tmp), mode)
            for f in FIELDS:
                totals[f].append(sum(s[f] for s in sample.values()))
            pid1.append(sample["pid1"]["Pss"])
        med = {f: statistics.median(v) / 1024 for f, v in totals.items()}
        rows.append((mode, statistics.median(pid1) / 1024, med))
    print(f"python {sys.version.split()[0]}, {args.runs} runs each, medians, MiB")
    print("| metrics | PID 1 Pss | agent Pss | agent Private_Clean + Private_Dirty | agent Rss |")
    print("|---|---|---|---|---|")
    label = {"off": "off (no BOOTSTRAP_HTTP_PORT)", "probes": "on, probes only (before any scrape)",
             "scraped": "on, scraped (after 10 scrapes)"}
    for mode, p1, med in rows:
        print(f"| {label[mode]} | {p1:.1f} | {med['Pss']:.1f} | {med['Private_Clean'] + med['Private_Dirty']:.1f} "
              f"| {med['Rss']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
