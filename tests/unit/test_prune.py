"""`bootstrap logs prune` on real trees in temporary directories, and the liveness lock in-process:
options, sizes, rotated names, escaping, what a pass removes, compresses and keeps."""
from __future__ import annotations

import fcntl
import gzip
import os
import threading
import time
from pathlib import Path

import pytest

from bootstrap.errors import UsageError
from bootstrap.node.cli import parse, parse_size
from bootstrap.node.compress import ROTATED
from bootstrap.node.logroot import escape
from bootstrap.node.prune import Options, run_pass
from bootstrap.pid1 import loglock
from tests.support.disk import du
from tests.support.paths import REPO
from tests.support.waiting import wait_until

DAY = 86400


def dead_dir(root: Path, rel: str, days_old: float, files: dict[str, bytes] | None = None) -> Path:
    """A log dir left by an agent that is gone: its record, its (free) lock and some logs, all aged."""
    d = root / rel
    d.mkdir(parents=True)
    (d / ".bootstrap.jsonl").write_text('{"event": "start"}\n{"event": "exit"}\n')
    (d / ".bootstrap.lock").touch()
    for name, data in (files or {"app.log": b"x" * 5000}).items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    when = time.time() - days_old * DAY
    for path in [d, *d.rglob("*")]:
        os.utime(path, (when, when), follow_symlinks=False)
    return d


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("1234", 1234), ("10G", 10 * 1000**3), ("10GB", 10 * 1000**3), ("500Mi", 500 * 1024**2),
    ("1.5Gi", int(1.5 * 1024**3)), ("2k", 2000), ("3Ki", 3072), ("1T", 1000**4), ("7MiB", 7 * 1024**2),
])
def test_sizes_are_kubernetes_quantities(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "-1G", "10X", "10 G B", "1e9", "ten"])
def test_bad_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--max-bytes"):
        parse_size(text)


@pytest.mark.parametrize(("args", "message"), [
    ([], "--root is required"),
    (["--root"], "--root needs a value"),
    (["--root", "/x", "--keep-days", "-1"], "--keep-days='-1' must be a number from 0 to"),
    (["--root", "/x", "--keep-days", "inf"], "--keep-days='inf' must be a number"),
    (["--root", "/x", "--every", "1e300"], "--every='1e300' must be a number from 1 to 3.1"),
    (["--root", "/x", "--max-bytes", "9" * 400], "--max-bytes='9999999999.*' is too large"),
    (["--root", "/x", "--keep-days", "nan"], "--keep-days='nan' must be a number"),
    (["--root", "/x", "--compress-after-days=soon"], "--compress-after-days='soon'"),
    (["--root", "/x", "--every", "0"], "--every='0' must be a number from 1 to"),
    (["--root", "/x", "--metrics-port", "9100"], "--metrics-port serves the metrics of a loop"),
    (["--root", "/x", "--every", "60", "--metrics-port", "99999"], "--metrics-port='99999' must be a TCP port"),
    (["--root", "/x", "--root", "/y"], "--root is given twice"),
    (["--root", "/x", "--force"], "unknown option '--force'"),
    (["--root", "/x", "--bad\nname"], r"unknown option '--bad\\\\x0aname'"),
])
def test_bad_options_are_one_usage_error(args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(args)


def test_options_in_both_spellings() -> None:
    options, _ = parse(["--root=/data/logs", "--keep-days", "7", "--max-bytes=10Gi", "--compress-after-days=1.5",
                        "--dry-run"])
    assert options == Options("/data/logs", 7.0, 10 * 1024**3, 1.5, True)


@pytest.mark.parametrize("name", ["app.log.1", "app.log.12", "app.1.log", "catalina.out.2024-01-31",
                                  "catalina.2024-01-31.log", "app-2024-01-31.3.log", "app.log.20240131",
                                  "localhost_access_log.2024-01-31.txt", "app.log.2024-01-31.0"])
def test_rotated_names(name: str) -> None:
    assert ROTATED.search(name)


@pytest.mark.parametrize("name", ["app.log", "catalina.out", "gc.log", "app.log.lck", "notes.txt", "log.1x"])
def test_active_names_are_not_rotated(name: str) -> None:
    assert not ROTATED.search(name)


def test_escape_keeps_one_line_per_name() -> None:
    assert escape("a\nb") == "a\\x0ab"
    assert escape("tab\there\\") == "tab\\x09here\\\\"
    assert escape(os.fsdecode(b"bad\xffname")) == "bad\\xffname"
    assert escape("ünïcode ok") == "ünïcode ok"
    assert escape("\u2028") == "\\u2028"


def test_keep_days_removes_exactly_the_old_dead_dirs(tmp_path: Path) -> None:
    old = dead_dir(tmp_path, "orders/10.0.0.1", 10)
    older = dead_dir(tmp_path, "billing/10.0.0.2", 40)
    young = dead_dir(tmp_path, "orders/10.0.0.3", 2)
    lines: list[str] = []
    report = run_pass(Options(str(tmp_path), keep_days=7), lines.append)
    assert not old.exists() and not older.exists() and young.exists()
    assert sorted(line.split()[1] for line in lines if line.startswith("removed")) == \
        ["billing/10.0.0.2", "orders/10.0.0.1"]
    assert report.removed_dirs == 2 and report.errors == 0 and report.dead_dirs == 1
    assert (tmp_path / "orders").is_dir()  # parents are left: an agent may be making a dir in them


def test_a_held_lock_is_never_touched(tmp_path: Path) -> None:
    live = dead_dir(tmp_path, "orders/10.0.0.1", 30, {"app.log.1": b"y" * 9000})
    fd = os.open(live / ".bootstrap.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        before = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in live.rglob("*"))
        report = run_pass(Options(str(tmp_path), keep_days=1, max_bytes=0, compress_after_days=0), lambda _l: None)
        assert sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in live.rglob("*")) == before
        assert report.live_dirs == 1 and report.removed_dirs == 0 and not report.cap_met
    finally:
        os.close(fd)


def test_compression_keeps_content_owner_mode_and_age(tmp_path: Path) -> None:
    data = b"".join(b"line %d\n" % i for i in range(20000))
    d = dead_dir(tmp_path, "orders/10.0.0.1", 3, {"app.log.1": data, "app.log": b"active", "app.log.2.gz": b"gz",
                                                  "tomcat/catalina.2024-01-31.log": data})
    os.chmod(d / "app.log.1", 0o640)
    mtime = (d / "app.log.1").stat().st_mtime_ns
    report = run_pass(Options(str(tmp_path), compress_after_days=1), lambda _l: None)
    assert report.compressed_files == 2
    assert gzip.decompress((d / "app.log.1.gz").read_bytes()) == data
    assert gzip.decompress((d / "tomcat" / "catalina.2024-01-31.log.gz").read_bytes()) == data
    assert not (d / "app.log.1").exists() and (d / "app.log").read_bytes() == b"active"
    assert (d / "app.log.2.gz").read_bytes() == b"gz"
    st = (d / "app.log.1.gz").stat()
    assert st.st_mtime_ns == mtime and st.st_mode & 0o777 == 0o640
    assert report.freed_bytes > 0
    assert not [p for p in d.rglob("*.tmp")]


def test_agent_waiting_on_a_pruner_remakes_a_dir_moved_aside(tmp_path: Path) -> None:
    """The pruner holds the lock and renames the dir away; the agent then locks a fresh dir."""
    log_dir = tmp_path / "orders" / "10.0.0.1"
    log_dir.mkdir(parents=True)
    lock_path = log_dir / ".bootstrap.lock"
    pruner = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(pruner, fcntl.LOCK_EX)
    recreated: list[bool] = []
    got: list[int | None] = []

    def agent() -> None:
        got.append(loglock.hold(str(log_dir), recreate=lambda: (log_dir.mkdir(), recreated.append(True))))

    thread = threading.Thread(target=agent)
    thread.start()

    def agent_opened_the_lock() -> bool:
        return any(os.readlink(f"/proc/self/fd/{n}") == str(lock_path) for n in os.listdir("/proc/self/fd")
                   if os.path.islink(f"/proc/self/fd/{n}") and int(n) != pruner)

    wait_until(agent_opened_the_lock, timeout=10)
    os.rename(log_dir, tmp_path / "orders" / ".bootstrap-trash.10.0.0.1")
    os.close(pruner)
    thread.join(10)
    fd = got[0]
    assert fd is not None and recreated == [True]
    try:
        assert os.fstat(fd).st_ino == lock_path.stat().st_ino
    finally:
        loglock.release(fd)


def test_a_symlink_in_place_of_the_lock_is_one_warning(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "target").write_text("not a lock")
    (tmp_path / ".bootstrap.lock").symlink_to(tmp_path / "target")
    assert loglock.hold(str(tmp_path), recreate=lambda: None) is None
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "bootstrap: warning: cannot open" in err and "the app runs on" in err


def test_dashboard_uses_only_metrics_the_pruner_exports() -> None:
    import json
    import re

    from bootstrap.node.metrics import Metrics
    from bootstrap.node.prune import Report

    metrics = Metrics(Options("/data/logs", max_bytes=10), node="node-1")
    metrics.add(Report(freed_bytes=5, removed_dirs=1, live_dirs=2, root_bytes=9))
    text = metrics.text().decode()
    exported = set(re.findall(r"^(bootstrap_logs_prune_\w+)\{", text, flags=re.M))
    assert 'bootstrap_logs_prune_root_bytes{node="node-1"} 9.0' in text
    dashboard = (REPO / "helm" / "microservice" / "dashboards" / "bootstrap.json")
    exprs = " ".join(t["expr"] for p in json.loads(dashboard.read_text())["panels"] for t in p.get("targets", []))
    used = set(re.findall(r"\bbootstrap_logs_prune_\w+", exprs))
    assert {"bootstrap_logs_prune_root_bytes", "bootstrap_logs_prune_freed_bytes_total",
            "bootstrap_logs_prune_removed_dirs_total", "bootstrap_logs_prune_live_dirs"} <= used
    assert used <= exported


def test_a_dead_dir_holding_a_live_one_is_kept(tmp_path: Path) -> None:
    """Two patterns on one node ({app} and {app}/{ip}): the outer dir is dead, the inner one runs."""
    outer = dead_dir(tmp_path, "orders", 30)
    inner = dead_dir(tmp_path, "orders/10.0.0.1", 30)
    fd = os.open(inner / ".bootstrap.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        report = run_pass(Options(str(tmp_path), keep_days=1, max_bytes=0), lambda _l: None)
        assert outer.exists() and inner.exists()
        assert report.live_dirs == 1 and report.removed_dirs == 0
    finally:
        os.close(fd)
    report = run_pass(Options(str(tmp_path), keep_days=1), lambda _l: None)
    assert not outer.exists() and report.removed_dirs == 1


# --- the liveness lock kept linked by PID 1 --------------------------------------------------------

def lock_is_held(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@pytest.mark.parametrize("app_does", ["unlink", "replace"])
def test_pid1_links_its_lock_again_when_an_app_removed_it(tmp_path: Path, app_does: str) -> None:
    """`find logs -name '*.lock' -delete` (or a file moved over the lock) must not make a live
    directory look dead: PID 1's periodic check puts a held lock back under the name."""
    fd = loglock.hold(str(tmp_path), recreate=lambda: None)
    assert fd is not None
    lock = tmp_path / ".bootstrap.lock"
    try:
        lock.unlink()
        if app_does == "replace":
            lock.write_text("the app's own file\n")
        assert not lock_is_held(lock) if lock.exists() else True
        loglock.keep_linked()
        assert lock_is_held(lock)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".bootstrap.lock"]  # no temporary name left
        loglock.keep_linked()  # linked: nothing to do
        assert lock_is_held(lock)
    finally:
        loglock.release(fd)
    assert not lock_is_held(lock)  # released: whichever descriptor holds it now


def test_keep_linked_never_raises(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The log dir gone or turned into something else: no exception on PID 1's path, at most one warning."""
    log_dir = tmp_path / "d"
    log_dir.mkdir()
    fd = loglock.hold(str(log_dir), recreate=lambda: None)
    try:
        (log_dir / ".bootstrap.lock").unlink()
        (log_dir / ".bootstrap.lock").mkdir()  # a directory in the way
        loglock.keep_linked()
        loglock.keep_linked()
        os.rmdir(log_dir / ".bootstrap.lock")
        os.rename(log_dir, tmp_path / "moved")  # moved away: nothing to link into
        loglock.keep_linked()
        assert not log_dir.exists()
    finally:
        loglock.release(fd)
    err = capfd.readouterr().err
    assert err.count("\n") <= 1 and "Traceback" not in err


# --- bytes actually freed, each inode once --------------------------------------------------------



def test_hard_links_are_counted_once_and_free_nothing_when_linked_elsewhere(tmp_path: Path) -> None:
    """A 1 MiB file linked from a live dir and from outside the root: removing the dead dir that also
    links it frees nothing of it, and the root counts it once."""
    root = tmp_path / "root"
    root.mkdir()
    big = tmp_path / "outside.log"
    big.write_bytes(os.urandom(1 << 20))
    dead = dead_dir(root, "orders/10.0.0.1", 30, {"app.log": b"x" * 5000})
    live = dead_dir(root, "orders/10.0.0.2", 30, {"app.log": b"y" * 5000})
    for d in (dead, live):
        os.link(big, d / "shared.log.1")
        os.link(big, d / "shared-again.log.1")
    when = time.time() - 30 * DAY
    os.utime(big, (when, when))
    fd = os.open(live / ".bootstrap.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        before = du(root)
        dry = run_pass(Options(str(root), keep_days=7, dry_run=True), lambda _l: None)
        assert dry.root_bytes == before - dry.freed_bytes
        assert dry.freed_bytes < 64 << 10  # the shared file stays: it is linked from elsewhere
        lines: list[str] = []
        report = run_pass(Options(str(root), keep_days=7, compress_after_days=0), lines.append)
        assert not dead.exists() and report.removed_dirs == 1, lines
        assert report.freed_bytes == before - du(root) == dry.freed_bytes
        assert report.root_bytes == du(root)
        assert report.compressed_files == 0  # a file with other links is not compressed: that frees nothing
    finally:
        os.close(fd)


def test_a_dead_dir_whose_files_are_all_its_own_links_frees_them(tmp_path: Path) -> None:
    d = dead_dir(tmp_path, "orders/10.0.0.1", 30, {"a.log": os.urandom(1 << 20)})
    os.link(d / "a.log", d / "b.log")
    before = du(tmp_path)
    lines: list[str] = []
    report = run_pass(Options(str(tmp_path), keep_days=7), lines.append)
    assert report.freed_bytes == before - du(tmp_path) > 1 << 20
    assert f"removed orders/10.0.0.1 ({report.freed_bytes} bytes" in lines[0]


# --- names that fit NAME_MAX ----------------------------------------------------------------------

def test_a_dead_dir_with_a_255_byte_name_is_removed(tmp_path: Path) -> None:
    """The trash name must fit NAME_MAX whatever the dir's name is."""
    for n in (231, 255):
        dead_dir(tmp_path, f"orders/{'d' * n}", 30)
    dead_dir(tmp_path, "orders/" + "é" * 127, 30)  # 254 bytes in UTF-8
    lines: list[str] = []
    report = run_pass(Options(str(tmp_path), keep_days=7), lines.append)
    assert report.errors == 0 and report.removed_dirs == 3, lines
    assert os.listdir(tmp_path / "orders") == []


def test_rotated_files_with_long_names_are_compressed(tmp_path: Path) -> None:
    """The temporary name must fit NAME_MAX; NAME.gz must too, or the file is left as it is."""
    fits = "a" * 240 + ".log.1"  # 246 bytes: NAME.gz is 249
    longest = "b" * 246 + ".log.1"  # 252 bytes: NAME.gz is 255
    too_long = "c" * 247 + ".log.1"  # 253 bytes: NAME.gz would not fit
    data = b"rotated\n" * 1000
    d = dead_dir(tmp_path, "orders/10.0.0.1", 3, {fits: data, longest: data, too_long: data})
    lines: list[str] = []
    report = run_pass(Options(str(tmp_path), compress_after_days=1), lines.append)
    assert report.errors == 0 and report.compressed_files == 2, lines
    assert gzip.decompress((d / (fits + ".gz")).read_bytes()) == data
    assert gzip.decompress((d / (longest + ".gz")).read_bytes()) == data
    assert (d / too_long).read_bytes() == data
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".")) == [
        ".bootstrap.jsonl", ".bootstrap.lock"]


# --- memory bounded by directories ----------------------------------------------------------------

def test_memory_follows_directories_not_files(tmp_path: Path) -> None:
    """One line per action is printed, never kept: 20,000 rotated files to compress in one dir take
    no more memory than 200."""
    import tracemalloc

    def peak(files: int) -> int:
        root = tmp_path / str(files)
        d = dead_dir(root, "orders/10.0.0.1", 3)
        for i in range(files):
            (d / f"app.log.{i}").touch()
        when = time.time() - 3 * DAY
        for p in d.iterdir():
            os.utime(p, (when, when))
        tracemalloc.start()
        try:
            report = run_pass(Options(str(root), compress_after_days=1, dry_run=True), lambda _l: None)
            assert report.compressed_files == files
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(200), peak(20000)
    assert large - small < 256 << 10, (small, large)


# --- options and output ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("1.5Ki", 1536), ("0.5Ki", 512), ("2.0", 2), ("7.5Ei", 15 * 2**59), ("9223372036854775807", 2**63 - 1),
    ("9.2E", 9200 * 10**15),
])
def test_whole_bytes_in_any_notation(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["0.4", "1.5", "1.0001Ki", "0.0001k"])
def test_fractions_of_a_byte_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match=rf"^--max-bytes={text!r} is not a whole number of bytes") as err:
        parse_size(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["8Ei", "9223372036854775808", "9.3E", "1" + "0" * 40])
def test_too_large_says_the_real_maximum(text: str) -> None:
    with pytest.raises(UsageError, match=r"give at most 9223372036854775807 bytes \(8Ei - 1\)"):
        parse_size(text)


def test_output_never_raises_on_an_ascii_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LANG=C makes stdout ASCII; a dir named `café` is written escaped, not as a traceback."""
    import io
    import sys

    dead_dir(tmp_path, "café/10.0.0.1", 30)
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii", errors="strict"))
    report = run_pass(Options(str(tmp_path), keep_days=7))
    sys.stdout.flush()
    assert report.removed_dirs == 1
    assert raw.getvalue().decode("ascii").startswith("removed caf\\xe9/10.0.0.1 (")
