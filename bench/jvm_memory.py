#!/usr/bin/env python3
"""JVM memory under real cgroup limits (`make bench`): the four workloads of bench/jvm/ at
256 Mi, 512 Mi, 1 Gi, 2 Gi, 4 Gi and 8 Gi with `jvm: auto` (the app under `bootstrap run` as PID 1),
and the heap filler with the JVM's default, -XX:MaxRAMPercentage=75 and a Paketo-style calculation
beside it. At 4 and 8 Gi (G1, whose native memory grows with the heap) the runs that only fill
memory up to the kernel's limit with -XX:MaxRAMPercentage=75 alone are left out: they take minutes
and show what 2 Gi shows.
Writes the "JVM memory" section of docs/benchmarks.md (between its markers). Needs root and
cgroup v1's memory controller; every cgroup it makes is named i12b-jvm-… and removed afterwards.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jvmlab  # noqa: E402

ROOT = jvmlab.ROOT
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- jvm-memory:begin -->", "<!-- jvm-memory:end -->"
MiB = jvmlab.MiB
PREFIX = "i12b-jvm"
LIMITS = {**jvmlab.LIMITS, "4 Gi": 4096 * MiB, "8 Gi": 8192 * MiB}
LARGE = ("4 Gi", "8 Gi")  # bounded: the jvm: auto matrix and the heap filler's columns only


def log(msg: str) -> None:
    print(f"[jvm-bench] {msg}", file=sys.stderr, flush=True)


def outcome(run: jvmlab.Run, agent: bool) -> str:
    """One cell: how the run ended."""
    if run.oom_kills:
        return f"**kernel OOM kill** ({run.oom_kills})"
    record = run.record
    if agent and record.get("reason") == "out-of-memory-error":
        dump = record.get("heap_dump")
        path = Path(str(dump)) if dump else None
        size = f", dump {path.stat().st_size // MiB} MiB" if path and path.exists() else ", no dump"
        return f"OutOfMemoryError ({record.get('oom_error')}){size}"
    if "Terminating due to java.lang.OutOfMemoryError" in run.stderr:
        return "OutOfMemoryError, exit 3"
    match = re.search(r"java\.lang\.OutOfMemoryError: ([^\n(]+)", run.stderr)
    if run.returncode == 0:
        return "completed"
    if match:
        kind = "direct buffer memory" if "direct buffer memory" in match.group(1) else match.group(1).strip()[:40]
        return f"OutOfMemoryError ({kind}), exit {run.returncode}"
    if agent and record:
        return f"{record.get('reason')}, exit {record.get('raw_exit_code')}"
    return f"exit {run.returncode}"


def pct(part: int | None, whole: int) -> str:
    return "—" if part is None else f"{part * 100 / whole:.0f}%"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def iso_seconds(text: str) -> float:
    from datetime import datetime

    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def start_to_ready(work: Path, mode: str, port: int, limit: int) -> float:
    """Seconds from bootstrap's launch of the example jar to its HTTP readiness check passing, as the
    agent records them (supervisor.json started_at, status.json ready_at)."""
    env = jvmlab.app_env(work, BOOTSTRAP_JVM=mode, BOOTSTRAP_READY_HTTP=f"http://127.0.0.1:{port}/health")
    prod = work / "app" / "conf.d" / "prod"
    (prod / "application.properties").write_text(f"server.port={port}\nenv=prod\n")
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    group = jvmlab.MemoryCgroup(PREFIX, limit)
    try:
        proc = subprocess.Popen([jvmlab.bootstrap_binary(), "run", "--", "java", "-cp", str(work / "hello"),
                                 "hello.Hello"], env=env, cwd=work / "app", stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=group.enter)
        deadline = time.monotonic() + 60
        status: dict[str, object] = {}
        while time.monotonic() < deadline and status.get("state") != "ready":
            time.sleep(0.02)
            try:
                status = json.loads((run_dir / "status.json").read_text())
            except (OSError, ValueError):
                status = {}
        proc.terminate()
        proc.wait(30)
        started = json.loads((run_dir / "supervisor.json").read_text())["started_at"]
        if status.get("state") != "ready":
            raise RuntimeError(f"the example jar never became ready with jvm: {mode}")
        return iso_seconds(str(status["ready_at"])) - iso_seconds(str(started))
    finally:
        group.remove()


def startup_table(work: Path, rounds: int) -> str:
    """The example jar (examples/apps/hello-jar) under `bootstrap run` in a 512 Mi group, jvm auto
    against off, interleaved; medians and p90s."""
    hello = work / "hello"
    subprocess.run(["javac", "-d", str(hello), str(ROOT / "examples/apps/hello-jar/src/hello/Hello.java")], check=True)
    times: dict[str, list[float]] = {"auto": [], "off": []}
    for n in range(rounds):
        for mode in (("auto", "off") if n % 2 else ("off", "auto")):
            times[mode].append(start_to_ready(work, mode, 24500 + n % 50, 512 * MiB))
    rows = []
    for mode, xs in times.items():
        xs.sort()
        rows.append([f"`jvm: {mode}`", f"{statistics.median(xs) * 1000:.0f} ms",
                     f"{xs[min(len(xs) - 1, math.ceil(0.9 * len(xs)) - 1)] * 1000:.0f} ms"])
    ratio = statistics.median(times["auto"]) / statistics.median(times["off"])
    return table(["example jar, 512 Mi, OpenJDK 17", "start to ready (median)", "p90"], rows) + \
        f"\n\n`jvm: auto` / `off`: {ratio:.2f}× ({rounds} runs each, interleaved)."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limits", nargs="*", default=list(LIMITS), help="subset of: " + ", ".join(LIMITS))
    parser.add_argument("--rounds", type=int, default=10, help="start-to-ready runs per mode (0: none)")
    parser.add_argument("--no-docs", action="store_true", help="print only; do not touch docs/benchmarks.md")
    args = parser.parse_args()
    if os.geteuid() != 0 or not jvmlab.MEMORY_ROOT.is_dir() or not jvmlab.javac():
        log("error: needs root, cgroup v1 memory at /sys/fs/cgroup/memory and javac (make deps)")
        return 1
    began = time.monotonic()
    seconds: dict[str, float] = {}  # per limit
    work = Path(tempfile.mkdtemp(prefix="i12b-jvm-bench-"))
    try:
        classes = jvmlab.compile_workloads(work / "classes")
        heap_rows, matrix_rows, percent_rows, killed_under_auto, unrecorded = [], [], [], 0, 0
        for name in args.limits:
            limit = LIMITS[name]
            limit_began = time.monotonic()
            cells = [name]
            heap_cells = [name]
            for label, workload in jvmlab.WORKLOADS.items():
                run_dir = work / f"{workload}-{limit // MiB}"
                run_dir.mkdir()
                log(f"{name} {label}: jvm auto")
                run = jvmlab.under_agent(workload, classes, limit, run_dir, PREFIX)
                killed_under_auto += run.oom_kills > 0
                vm_oome = "Terminating due to java.lang.OutOfMemoryError" in run.stderr
                unrecorded += vm_oome and run.record.get("reason") != "out-of-memory-error"
                cells.append(f"{outcome(run, True)}; peak {pct(run.peak, limit)}")
                if workload == "HeapFill":
                    heap_cells.append(f"{pct(run.last('max_heap'), limit)} / {pct(run.last('filled'), limit)}: "
                                      f"{outcome(run, True)}")
                shutil.rmtree(run_dir, ignore_errors=True)
            matrix_rows.append(cells)
            for label, flags in (("JVM default", []), ("MaxRAMPercentage=75", ["-XX:MaxRAMPercentage=75"]),
                                 ("Paketo-style", jvmlab.paketo_flags(limit))):
                if flags is None:
                    heap_cells.append("does not fit (fixed regions exceed the limit)")
                    continue
                log(f"{name} heap filler: {label}")
                run = jvmlab.bare("HeapFill", classes, flags, limit, PREFIX)
                heap_cells.append(f"{pct(run.last('max_heap'), limit)} / {pct(run.last('filled'), limit)}: "
                                  f"{outcome(run, False)}")
            heap_rows.append(heap_cells)
            if name not in LARGE:
                other = [name]
                for label in ("direct buffers", "many loaded classes"):
                    log(f"{name} {label}: MaxRAMPercentage=75 alone")
                    run = jvmlab.bare(jvmlab.WORKLOADS[label], classes, ["-XX:MaxRAMPercentage=75"], limit, PREFIX)
                    other.append(f"{outcome(run, False)}; peak {pct(run.peak, limit)}")
                percent_rows.append(other)
            seconds[name] = time.monotonic() - limit_began
        startup = "(not run)"
        if args.rounds:
            log(f"example jar start to ready, jvm auto and off × {args.rounds}")
            startup = startup_table(work, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - began
    per_limit = ", ".join(f"{name} {secs:.0f} s" for name, secs in seconds.items())
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[1].strip()
    host_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / (1 << 30)
    verdict = (f"Kernel OOM kills under `jvm: auto`: **{killed_under_auto}**; OutOfMemoryErrors the JVM "
               f"exited on that the exit record did not name: **{unrecorded}**")
    md = f"""{BEGIN}
## JVM memory under cgroup limits

Generated by `make bench` (`.venv/bin/python bench/jvm_memory.py`; took {elapsed:.0f} s, of which
{per_limit}, the rest start to ready). {java}, 2 CPUs, {host_gib:.0f} GiB of RAM,
each run in a fresh cgroup v1 memory group (`memory.limit_in_bytes` and
`memory.memsw.limit_in_bytes` set to the limit, no swap); the workloads are `bench/jvm/*.java`.
`jvm: auto` runs are `bootstrap run -- java -cp … WORKLOAD` as PID 1 of a new PID namespace inside
the group, so the agent's own memory counts against the limit as in a pod. *Peak* is
`memory.max_usage_in_bytes`, page cache included (writing a heap dump fills it; the kernel reclaims
it, nothing is killed). A kernel OOM kill is read from `memory.oom_control` (`oom_kill`).

{verdict}.

### Usable heap: max heap / heap actually filled, as % of the limit (heap filler)

The goal is at least 70% at 1 Gi and above, never killed by the kernel. From 2 Gi the JVM runs G1,
and `jvm: auto` keeps 4% of the heap for G1's own native memory (docs/jvm.md). Paketo-style: its
calculator's defaults (250 threads × 1 MiB stacks, 240 MiB code cache, 10 MiB direct memory, metaspace for
{jvmlab.PAKETO_CLASSES:,} loaded classes, no headroom).

{table(["limit", "jvm: auto", "JVM default (25%)", "MaxRAMPercentage=75", "Paketo-style"], heap_rows)}

### `jvm: auto`, every workload: how it ended, and the peak memory as % of the limit

{table(["limit", *jvmlab.WORKLOADS], matrix_rows)}

### For comparison: -XX:MaxRAMPercentage=75 alone, the workloads it does not bound (up to 2 Gi)

{table(["limit", "direct buffers", "many loaded classes"], percent_rows)}

From 2 Gi the JVM picks G1 (2 CPUs and at least 1792 MB make a "server class machine"; below it, Serial):
G1 throws OutOfMemoryError with part of its max heap unfilled by this workload (about a quarter at
2 Gi, 7-13% at 4 and 8 Gi), under every sizing alike, so the filled share is lower there. The max heap is
`Runtime.maxMemory()`, which with Serial GC excludes one survivor space.

### Start to ready: what the flags cost

{startup}

Direct buffers: the JDK's Java code throws that OutOfMemoryError (as it does "unable to create
native thread"); HotSpot's -XX:+ExitOnOutOfMemoryError covers only errors the VM itself raises (heap,
metaspace), so the workload dies of the uncaught error (exit 1), capped by -XX:MaxDirectMemorySize
well before the kernel limit, and the record says `exited`.
{END}"""
    print(md)
    if not args.no_docs and set(args.limits) == set(LIMITS) and args.rounds:
        text = DOC.read_text() if DOC.exists() else ""
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN)] + md + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + "\n\n" + md + "\n"
        DOC.write_text(text)
        log("wrote the JVM section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
