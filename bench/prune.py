#!/usr/bin/env python3
"""Benchmark of `bootstrap logs prune` (run by `make bench` after bench/run.py): time, CPU and peak
memory of one pass over a log root of 100,000 files in 2,000 log directories, against `du -s` and
`find … -delete`-style peers over the same tree, in the same run; and peak memory with 100,000
files in one log directory. Writes docs/benchmarks-prune.md.

The tree: 20 apps × 100 pod IPs; each log directory holds `.bootstrap.jsonl`, `.bootstrap.lock` and
48 log files of 1 KiB (app.log, rotated app.log.N); directory i is (i mod 60) days old; 100 of them
are live (this harness holds their flock, as running agents would). The one-directory tree: one
dead log directory holding 100,000 (then 1,000) empty rotated files, 3 days old, on a tmpfs
(/dev/shm: it measures memory, and making 100,000 files on a shared disk would take most of the
run); a dry run with --compress-after-days 1 prints one line per file. Peak memory is the child's
maximum resident set size as GNU time reports it; CPU is its user + system time. The 2,000-dir tree
is on the root filesystem (not tmpfs) and warm in the page cache, as on a node that prunes every hour.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400
APPS, IPS, FILES = 20, 100, 48  # 2,000 dirs × (48 logs + 2 agent files) = 100,000 files
LIVE_EVERY = 20  # every 20th directory is live: 100 of 2,000
PRUNE = [sys.executable, "-m", "bootstrap", "logs", "prune"]
TIME = "/usr/bin/time"  # GNU time (Debian package `time`, deps/apt-bench.txt)
SHM = Path("/dev/shm")  # the one-dir tree goes on a tmpfs when there is one: it measures memory, not the disk
STARTED = time.monotonic()


def log(text: str) -> None:
    print(f"bench: [{time.monotonic() - STARTED:.0f} s] {text}", file=sys.stderr, flush=True)


def build(root: Path, files: int = FILES) -> list[int]:
    """The tree, or what a removal took from it (the directories still there are left as they are:
    the disk-bound part of the run is making and deleting files); returns the lock descriptors held
    for the live directories."""
    now = time.time()
    payload = b"2026-01-01 12:00:00.000 INFO  [main] o.e.App: a log line of a realistic length\n" * 12
    held = []
    for a in range(APPS):
        for i in range(IPS):
            n = a * IPS + i
            d = root / f"app-{a:02d}" / f"10.{a}.{i // 250}.{i % 250}"
            if not d.exists():
                d.mkdir(parents=True)
                (d / ".bootstrap.jsonl").write_bytes(b'{"event": "start"}\n{"event": "exit"}\n')
                (d / ".bootstrap.lock").touch()
                for f in range(files):
                    (d / ("app.log" if f == 0 else f"app.log.{f}")).write_bytes(payload[:1024])
                when = now - (n % 60) * DAY - 3600
                for p in d.iterdir():
                    os.utime(p, (when, when))
                os.utime(d, (when, when))
            if n % LIVE_EVERY == 0:
                fd = os.open(d / ".bootstrap.lock", os.O_RDONLY)
                fcntl.flock(fd, fcntl.LOCK_EX)
                held.append(fd)
    return held


def shrink(root: Path, files: int) -> None:
    """Leaves `files` log files in each directory (app.log, app.log.1, …), keeping its age."""
    for d in root.glob("app-*/*"):
        when = d.stat().st_mtime
        for p in d.glob("app.log.*"):
            if int(p.name.rsplit(".", 1)[1]) >= files:
                p.unlink()
        os.utime(d, (when, when))


def build_one_dir(root: Path, files: int) -> None:
    """One dead log directory holding `files` empty rotated files (app.log.N), 3 days old."""
    d = root / "app-00" / "10.0.0.1"
    d.mkdir(parents=True)
    (d / ".bootstrap.jsonl").write_bytes(b'{"event": "start"}\n{"event": "exit"}\n')
    (d / ".bootstrap.lock").touch()
    when = time.time() - 3 * DAY
    for f in range(files):
        fd = os.open(d / f"app.log.{f + 1}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.utime(fd, (when, when))
        os.close(fd)
    for p in (d / ".bootstrap.jsonl", d / ".bootstrap.lock", d):
        os.utime(p, (when, when))


def one_dir_memory(tree: Path, runs: int) -> dict[str, list[dict[str, float]]]:
    """Peak memory with all files in one log directory: a steady pass, and a dry run that prints
    one `would compress` line per file (lines are printed, never kept). Made with 100,000 files,
    then cut to 1,000."""
    results: dict[str, list[dict[str, float]]] = {}
    build_one_dir(tree, 100_000)
    for files in (100_000, 1_000):
        if files < 100_000:
            shrink(tree, files + 1)
        for what, extra in (("steady", ["--keep-days", "3650"]),
                            ("--compress-after-days 1 --dry-run", ["--compress-after-days", "1", "--dry-run"])):
            argv = [*PRUNE, "--root", str(tree), *extra]
            measure(argv)
            results[f"prune {what}, {files:,} files in one dir"] = [measure(argv) for _ in range(runs)]
    return results


def release(held: list[int]) -> None:
    for fd in held:
        os.close(fd)


def measure(argv: list[str]) -> dict[str, float]:
    """GNU time reports the child's CPU and peak RSS: wait4 from this harness would count the pages a
    fork copies from it in the child's ru_maxrss."""
    with tempfile.NamedTemporaryFile("r", prefix="bench-time-") as out:
        began = time.monotonic()
        proc = subprocess.run([TIME, "-f", "%U %S %M", "-o", out.name, *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        wall = time.monotonic() - began
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
        user, system, rss_kib = out.read().split()[-3:]
    return {"wall": wall, "cpu": float(user) + float(system), "rss_mib": int(rss_kib) / 1024}


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def ratio(a: float, b: float, digits: int) -> str:
    return f"{a / b:.{digits}f}×" if b > 0 else "n/a"


def count_files(root: Path) -> tuple[int, int]:
    dirs = files = 0
    for _, dnames, fnames in os.walk(root):
        dirs += len(dnames)
        files += len(fnames)
    return dirs, files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per steady-pass contender")
    parser.add_argument("--removal-runs", type=int, default=1,
                        help="runs per removal contender (what it removed is made again for each; removal is disk-bound)")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))  # so the work directory is removed
    work = Path(tempfile.mkdtemp(prefix="bootstrap-bench-prune-", dir="/var/tmp"))
    tree = work / "logs"
    results: dict[str, list[dict[str, float]]] = {}
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        log("building 100,000 files in 2,000 dirs")
        held = build(tree)
        dirs, files = count_files(tree)
        log(f"built {files} files, {dirs} dirs")
        baseline = [measure([sys.executable, "-c", "pass"]) for _ in range(args.runs)]
        steady = {
            "prune, steady root (nothing to do: one pass of the chart's loop)": [*PRUNE, "--root", str(tree), "--keep-days", "3650",
                                                   "--compress-after-days", "3650"],
            "prune --dry-run --keep-days 30": [*PRUNE, "--root", str(tree), "--keep-days", "30", "--dry-run"],
            "du -s (peer: the same walk)": ["du", "-s", str(tree)],
            "find -mtime +3650 (peer: nothing matches)": ["find", str(tree), "-mindepth", "2", "-maxdepth", "2",
                                                          "-type", "d", "-mtime", "+3650"],
        }
        for name, argv in steady.items():
            measure(argv)  # warm-up: the page cache holds the tree
            results[name] = [measure(argv) for _ in range(args.runs)]
            log(f"{name}: {median(results[name], 'wall') * 1000:.0f} ms")
        release(held)
        removal = {
            "prune --keep-days 30 (removes the 967 dead dirs over 30 days)": [*PRUNE, "--root", str(tree), "--keep-days", "30"],
            "find -mtime +30 -exec rm -rf (peer: 1,000 dirs, live ones too)": [
                "find", str(tree), "-mindepth", "2", "-maxdepth", "2", "-type", "d", "-mtime", "+30",
                "-exec", "rm", "-rf", "{}", "+"],
        }
        for name in removal:
            results[name] = []
        for _ in range(args.removal_runs):  # interleaved: a burst of disk traffic from elsewhere hits both
            for name, argv in removal.items():
                held = build(tree)
                subprocess.run(["du", "-s", str(tree)], check=True, capture_output=True)  # warm the cache
                results[name].append(measure(argv))
                release(held)
                log(f"{name}: {results[name][-1]['wall'] * 1000:.0f} ms")
        # Memory is bounded by the number of dirs, not of files: the same 2,000 dirs with 10x fewer files.
        held = build(tree, files=3)  # the dirs the peer removed come back with 3 logs, the others are cut to 3
        shrink(tree, 3)
        small = [*PRUNE, "--root", str(tree), "--keep-days", "3650"]
        measure(small)
        results["prune, steady, 2,000 dirs × 5 files (memory check)"] = [measure(small) for _ in range(args.runs)]
        release(held)
        log("100,000 files in one dir")
        shutil.rmtree(tree)
        one = Path(tempfile.mkdtemp(prefix="bootstrap-bench-prune-", dir=SHM if SHM.is_dir() else work))
        try:
            results.update(one_dir_memory(one / "logs", args.runs))
        finally:
            shutil.rmtree(one, ignore_errors=True)
        log("done")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base_rss = median(baseline, "rss_mib")
    removal_names = list(removal)
    rows = ["| Contender | wall (median) | wall (min–max) | CPU user+sys | peak RSS |", "|---|---|---|---|---|"]
    for name, runs in [*results.items(), ("`python3 -c pass` (baseline)", baseline)]:
        walls = [r["wall"] * 1000 for r in runs]
        rows.append(f"| {name} | {median(runs, 'wall') * 1000:.0f} ms | {min(walls):.0f}–{max(walls):.0f} ms | "
                    f"{median(runs, 'cpu') * 1000:.0f} ms | {median(runs, 'rss_mib'):.1f} MiB |")
    steady_name = "prune, steady root (nothing to do: one pass of the chart's loop)"
    ratios = [
        f"- Steady pass vs `du -s` over the same tree: {ratio(median(results[steady_name], 'wall'), median(results['du -s (peer: the same walk)'], 'wall'), 1)} wall, "
        f"{ratio(median(results[steady_name], 'cpu'), median(results['du -s (peer: the same walk)'], 'cpu'), 1)} CPU.",
        "- Removal is disk-bound (deleting 48,000 files; the reference VM's ext4 has online discard and "
        "shares its disk), so its wall time swings between rounds; compare the CPU column.",
        f"- Removal vs `find -exec rm -rf`: CPU {ratio(median(results[removal_names[0]], 'cpu'), median(results[removal_names[1]], 'cpu'), 2)}, {ratio(median(results['prune --keep-days 30 (removes the 967 dead dirs over 30 days)'], 'wall'), median(results['find -mtime +30 -exec rm -rf (peer: 1,000 dirs, live ones too)'], 'wall'), 2)} wall.",
        f"- Peak memory above a bare interpreter: {median(results[steady_name], 'rss_mib') - base_rss:.1f} MiB with "
        f"100,000 files, {median(results['prune, steady, 2,000 dirs × 5 files (memory check)'], 'rss_mib') - base_rss:.1f} MiB "
        "with 10,000 files in the same 2,000 dirs.",
        "- 100,000 files in one dir, above a bare interpreter: "
        f"{median(results['prune steady, 100,000 files in one dir'], 'rss_mib') - base_rss:.1f} MiB for a steady pass "
        f"({median(results['prune steady, 1,000 files in one dir'], 'rss_mib') - base_rss:.1f} MiB with 1,000 files), "
        f"{median(results['prune --compress-after-days 1 --dry-run, 100,000 files in one dir'], 'rss_mib') - base_rss:.1f} MiB "
        "printing 100,000 `would compress` lines "
        f"({median(results['prune --compress-after-days 1 --dry-run, 1,000 files in one dir'], 'rss_mib') - base_rss:.1f} MiB "
        "printing 1,000).",
    ]
    cpus = os.cpu_count()
    md = "\n".join([
        "# `bootstrap logs prune` benchmark",
        "",
        f"Generated by `make bench` (`.venv/bin/python bench/prune.py`) on {platform.node()} "
        f"({cpus} CPUs, Python {platform.python_version()}, {platform.release()}), "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, in {time.monotonic() - started:.0f} s. "
        f"Medians of {args.runs} runs (removal: {args.removal_runs}, what it removed made again for each). Load average "
        f"{load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (1-minute): on a shared machine "
        "wall time includes waiting for a CPU and for the disk, CPU time does not.",
        "",
        "The tree: 100,000 files in 2,000 log directories (20 apps × 100 IPs, 48 log files of 1 KiB + "
        "`.bootstrap.jsonl` + `.bootstrap.lock` each), directory i is (i mod 60) days old, 100 of them live "
        "(their flock held); warm page cache, ext4 root filesystem. The one-dir rows: one dead log directory "
        f"holding 100,000 (or 1,000) empty rotated files, 3 days old, on {'a tmpfs' if SHM.is_dir() else 'the same disk'}.",
        "",
        *rows,
        "",
        *ratios,
        "",
    ])
    print(md)
    if not args.no_docs:
        (ROOT / "docs" / "benchmarks-prune.md").write_text(md)
        log("wrote docs/benchmarks-prune.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
