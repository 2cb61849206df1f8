#!/usr/bin/env python3
"""Replication benchmark: `dockerfile-gen replicate` against a plain `skopeo sync`, in the same run.

Ten images (a debootstrap bookworm base and nine apps on it, each with its own 2 MiB layer) are
pushed to a master docker-registry on 127.0.0.1. Each tool then fills two empty replicas of its own
(first sync), and runs again with nothing changed (re-run). Every replica sits behind a counting TCP
proxy, so "bytes sent" is what really went over the wire to the replicas, for both tools alike.
skopeo sync gets the same repositories (a --src yaml list), one process per replica in parallel, as
replicate serves the replicas in parallel.

    .venv/bin/python bench/replication.py [--images 10] [--runs 3] [--no-docs]

Writes the table into docs/registry.md between the bench markers. Needs root (podman storage).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.podman_engine import CONTAINERS_CONF, REGISTRIES_CONF, STORAGE_CONF, ensure_rootfs  # noqa: E402
from tests.support.registries import RegistryProcess  # noqa: E402

DOC = REPO / "docs" / "registry.md"
BEGIN, END = "<!-- bench:replication begin -->", "<!-- bench:replication end -->"


class CountingProxy:
    """Forwards 127.0.0.1:listen to a registry and counts the bytes the client sends."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.sent = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, dest: socket.socket, count: bool) -> None:
        try:
            while chunk := source.recv(1 << 16):
                dest.sendall(chunk)
                if count:
                    with self.lock:
                        self.sent += len(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, dest):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def take(self) -> int:
        with self.lock:
            sent, self.sent = self.sent, 0
        return sent

    def close(self) -> None:
        self.server.close()


def podman_env(work: Path) -> dict[str, str]:
    (work / "containers.conf").write_text(CONTAINERS_CONF.format(tmp=work / "libpod", networks=work / "networks"))
    (work / "storage.conf").write_text(STORAGE_CONF.format(graph=work / "graph", run=work / "run"))
    (work / "registries.conf").write_text(REGISTRIES_CONF)
    (work / "tmp").mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(CONTAINERS_CONF=str(work / "containers.conf"), CONTAINERS_STORAGE_CONF=str(work / "storage.conf"),
               CONTAINERS_REGISTRIES_CONF=str(work / "registries.conf"), TMPDIR=str(work / "tmp"))
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


def push_images(env: dict[str, str], work: Path, master: str, count: int) -> list[str]:
    run(["podman", "import", "--quiet", str(ensure_rootfs()), "localhost/debian:bookworm"], env)
    repos = ["bench/base"]
    run(["podman", "push", "--tls-verify=false", "localhost/debian:bookworm", f"docker://{master}/bench/base:1"], env)
    for index in range(1, count):
        context = work / f"app-{index}"
        context.mkdir()
        (context / "payload").write_bytes(os.urandom(2 << 20))
        (context / "Dockerfile").write_text("FROM localhost/debian:bookworm\nCOPY payload /app/payload\n")
        run(["podman", "build", "--format", "docker", "-t", f"localhost/bench/app-{index}:1", str(context)], env)
        run(["podman", "push", "--tls-verify=false", f"localhost/bench/app-{index}:1", f"docker://{master}/bench/app-{index}:1"], env)
        repos.append(f"bench/app-{index}")
    return repos


def timed(argv_list: list[list[str]], env: dict[str, str]) -> tuple[float, list[subprocess.CompletedProcess[str]]]:
    """Runs the commands in parallel; the wall time until the last one ends."""
    started = time.monotonic()
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in argv_list]
    results = []
    for proc, argv in zip(procs, argv_list):
        out, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{out[-2000:]}\n{err[-2000:]}")
        results.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return time.monotonic() - started, results


def mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="re-runs with nothing changed, per tool (median reported)")
    parser.add_argument("--no-docs", action="store_true", help="print only; do not write docs/registry.md")
    args = parser.parse_args()
    for tool in ("podman", "skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: run `make deps` as root")
    work = Path(tempfile.mkdtemp(prefix="replbench-", dir="/var/tmp"))
    env = podman_env(work)
    registries = [RegistryProcess(name, work / "registries") for name in ("master", "ours-1", "ours-2", "skopeo-1", "skopeo-2")]
    proxies: list[CountingProxy] = []
    load_start = os.getloadavg()[0]
    try:
        for registry in registries:
            registry.start()
        master = registries[0]
        proxies = [CountingProxy(r.port) for r in registries[1:]]
        repos = push_images(env, work, master.host, args.images)
        gen = [sys.executable, "-m", "dockerfile_gen", "replicate", "--insecure", "--from", master.host]
        ours = gen + ["--to", proxies[0].host, "--to", proxies[1].host] + [a for r in repos for a in ("--repo", r)]
        source = work / "sync.yaml"
        source.write_text(f"{master.host}:\n  tls-verify: false\n  images-by-tag-regex:\n"
                          + "".join(f"    {r}: '.*'\n" for r in repos))
        # skopeo sync keeps only the last path component of each repository (bench/app-1 -> app-1), so
        # the destination carries the bench/ namespace, and the replicas end up named as the master.
        skopeo = [["skopeo", "sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false",
                   str(source), f"{proxy.host}/bench"] for proxy in proxies[2:]]

        rows = []
        print(f"pushed {len(repos)} images to the master; syncing", file=sys.stderr)
        first_time, results = timed([ours], env)
        first_bytes = proxies[0].take() + proxies[1].take()
        sys.stderr.write(results[0].stderr + results[0].stdout)
        reported = re.search(r"\((\d+) bytes\)", results[0].stdout)
        s_first, _ = timed(skopeo, env)
        s_first_bytes = proxies[2].take() + proxies[3].take()
        # The re-runs alternate between the tools, so a burst of load on the machine hits both alike.
        reruns, s_reruns, inside = [], [], []
        for _ in range(args.runs):
            seconds, results = timed([ours], env)
            assert " 0 copied" in results[0].stdout, results[0].stdout
            reruns.append(seconds)
            # replicate's own clock: from the first request to the summary, without interpreter start-up
            inside.append(float(re.findall(r" in ([0-9.]+)s$", results[0].stdout.strip())[-1]))
            s_reruns.append(timed(skopeo, env)[0])
        rerun_bytes = proxies[0].take() + proxies[1].take()
        s_rerun_bytes = proxies[2].take() + proxies[3].take()
        rows.append(("dockerfile-gen replicate", first_time, first_bytes, statistics.median(reruns), rerun_bytes // args.runs))
        rows.append(("skopeo sync (one per replica, in parallel)", s_first, s_first_bytes, statistics.median(s_reruns), s_rerun_bytes // args.runs))
        print(rows, file=sys.stderr)
        for replica in registries[1:]:  # both tools must have produced the same replicas
            got, want = replica.digests(), master.digests()
            assert got == want, (replica.name, sorted(set(got.items()) ^ set(want.items())))
    finally:
        for proxy in proxies:
            proxy.close()
        for registry in registries:
            registry.stop()
        subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True, check=False)
        subprocess.run(["umount", "-R", str(work / "graph")], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)

    ratio_first = rows[0][1] / rows[1][1]
    ratio_rerun = rows[0][3] / rows[1][3]
    table = [
        f"{args.images} images (a debootstrap bookworm base and {args.images - 1} apps on it with a 2 MiB layer each), "
        f"master → 2 replicas, on {os.cpu_count()} CPUs, {platform.release()}, load {load_start:.2f} at the start. "
        f"Re-run: median of {args.runs}. Bytes: counted by a TCP proxy in front of each replica (both replicas summed).",
        "",
        "| Tool | First sync | Bytes sent (first) | Re-run, nothing changed | Bytes sent (re-run) |",
        "|---|---|---|---|---|",
    ]
    for name, first, sent, rerun, rerun_sent in rows:
        table.append(f"| {name} | {first:.1f} s | {mib(sent)} | {rerun:.2f} s | {rerun_sent / 1024:.1f} KiB |")
    table += ["", f"replicate / skopeo sync: first sync {ratio_first:.2f}x the time, re-run {ratio_rerun:.2f}x the time. "
              f"Of replicate's re-run, {statistics.median(inside):.2f} s is the registry requests (its own clock); "
              "the rest is the Python interpreter starting and importing. "
              f"replicate's own count of bytes the replicas lacked: {mib(int(reported.group(1))) if reported else 'n/a'}.",
              "", "Reproduce: `make bench` (or `.venv/bin/python bench/replication.py`)."]
    text = "\n".join(table)
    print(text)
    if not args.no_docs:
        doc = DOC.read_text()
        start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
