"""`bootstrap logs prune` against real agents: a log root with live dirs held by running `bootstrap run`
processes, dead dirs of several ages, a SIGKILLed agent's dir and a dir reused by a new agent with
the same IP; a small tmpfs that fills up; two prunes at once; hostile trees."""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bootstrap.pid1 import loglock
from tests.support.agent import APP, Agent
from tests.support.apptree import app_tree
from tests.support.net import free_port
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_root, require_tool
from tests.support.waiting import wait_until

pytestmark = pytest.mark.process
DAY = 86400


def age(path: Path, days: float) -> None:
    """Sets the mtime of path and everything below it `days` in the past."""
    when = time.time() - days * DAY
    for p in [*path.rglob("*"), path]:
        os.utime(p, (when, when), follow_symlinks=False)


def dead_dir(root: Path, rel: str, days: float, files: dict[str, bytes] | None = None) -> Path:
    d = root / rel
    d.mkdir(parents=True)
    (d / ".bootstrap.jsonl").write_text('{"event": "start"}\n{"event": "exit"}\n')
    (d / ".bootstrap.lock").touch()
    for name, data in (files or {"app.log": b"old line\n" * 500}).items():
        (d / name).write_bytes(data)
    age(d, days)
    return d


def snapshot(path: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry below path: (mtime, size, content hash) — to prove a dir was not touched."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else ""
        out[str(p.relative_to(path))] = (st.st_mtime_ns, st.st_size, digest)
    return out


def prune(root: Path, *args: str, prefix: tuple[str, ...] = (),
          command: tuple[str, ...] = (BOOTSTRAP,)) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *command, "logs", "prune", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=120)


def runnable_by_anyone(base: Path) -> tuple[str, ...]:
    """`bootstrap` as another user can start it wherever this clone is: a clone in /root (mode 0700)
    keeps uid 65534 from opening its .venv/bin/bootstrap. The system interpreter the venv was made
    from runs world-readable copies of the package and of prometheus_client (all the pruner imports)."""
    import prometheus_client

    import bootstrap

    lib = base / "lib"
    skip = shutil.ignore_patterns("__pycache__")
    for package in (bootstrap, prometheus_client):
        source = Path(package.__file__ or "").parent
        shutil.copytree(source, lib / source.name, ignore=skip)
    for path in [base, *base.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return ("env", f"PYTHONPATH={lib}", python, "-s", "-m", "bootstrap")


def acted(result: subprocess.CompletedProcess[str], verb: str) -> list[str]:
    return sorted(line.split()[1] for line in result.stdout.splitlines() if line.startswith(verb + " "))


class Node:
    """A node's log root and the agents running on it, each a real `bootstrap run` of its own app tree."""

    def __init__(self, base: Path, log_root: Path, view: Path | None = None) -> None:
        self.base, self.root = base, log_root
        self.view = view or log_root  # where this process sees the log root (another mount namespace's)
        self.agents: list[Agent] = []

    def start(self, app: str, ip: str, pid1: bool = False, prefix: tuple[str, ...] = (),
              command: list[str] | None = None, **extra: str) -> Agent:
        home = self.base / f"{app}-{ip}-{len(self.agents)}"
        env = {**app_tree(home), "APP_NAME": app, "POD_IP": ip, "BOOTSTRAP_LOG_ROOT": str(self.root),
               "BOOTSTRAP_READY_CMD": "true", **extra}
        agent = Agent([*prefix, BOOTSTRAP, "run", "--", *(command or APP)], env, pid1)
        self.agents.append(agent)
        pid = agent.wait_line(r"started .* as pid (\d+)", stream="err").group(1)
        record = self.view / app / ip / ".bootstrap.jsonl"  # written just after that line

        def recorded() -> bool:
            return record.exists() and f'"pid": {pid}' in (record.read_text().splitlines() or [""])[-1]

        wait_until(recorded, timeout=15)
        return agent

    def stop(self) -> None:
        for agent in self.agents:
            app = agent.status().get("pid")
            agent.kill()
            if app:  # a SIGKILLed subreaper leaves its app behind; it is ours to end
                try:
                    os.killpg(app, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    root = tmp_path / "node-logs"
    root.mkdir()
    n = Node(tmp_path, root)
    yield n
    n.stop()


def lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.fixture
def populated(node: Node) -> dict[str, Path]:
    """The issue's log root. Ages of the dead dirs: 2, 10 and 40 days; the live and reused dirs'
    files are aged 30 days too, so only the lock can be what keeps them."""
    root = node.root
    dirs = {
        "live": root / "orders" / "10.0.0.1",
        "live-pid1": root / "billing" / "10.0.0.2",
        "dead-2d": dead_dir(root, "orders/10.0.1.1", 2, {"app.log": b"a" * 20000, "app.log.1": b"b\n" * 30000}),
        "dead-10d": dead_dir(root, "orders/10.0.1.2", 10, {"app.log": b"c" * 40000}),
        "dead-40d": dead_dir(root, "billing/10.0.1.3", 40, {"app.log": b"d" * 80000, "app.log.1": b"e\n" * 9000}),
        "reused": dead_dir(root, "orders/10.0.0.9", 60, {"app.log.1": b"old\n" * 9000}),
        "killed": root / "orders" / "10.0.0.5",
    }
    node.start("orders", "10.0.0.1")
    node.start("billing", "10.0.0.2", pid1=True)
    node.start("orders", "10.0.0.9")  # same app, same IP as the 60-day-old dir: live again
    for name in ("live", "live-pid1", "reused"):
        (dirs[name] / "app.log.1").write_bytes(b"rotated\n" * 5000)
        age(dirs[name], 30)
    victim = node.start("orders", "10.0.0.5")
    # Ready: its checker runs, so the fork hook has closed the checker's copy of the lock; killed
    # before that, the child could hold the lock for a moment after the agent is gone.
    wait_until(lambda: victim.status().get("state") == "ready", timeout=15)
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    age(dirs["killed"], 20)
    return dirs


LIVE = ("live", "live-pid1", "reused")


def test_sigkilled_agent_frees_the_lock_while_its_checker_lives(node: Node) -> None:
    agent = node.start("orders", "10.0.0.5")
    lock = node.root / "orders" / "10.0.0.5" / ".bootstrap.lock"
    assert not lock_is_free(lock)
    wait_until(lambda: agent.status().get("state") == "ready", timeout=15)  # the checker is running its loop
    checker = agent.helpers()[0]
    app = psutil.Process(agent.status()["pid"])
    checker.suspend()  # so it cannot notice PID 1's death and exit before we look
    try:
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(10)
        assert checker.is_running() and app.is_running()
        assert lock_is_free(lock)
        open_files = {f.path for p in (checker, app) for f in p.open_files()}
        assert str(lock) not in open_files
    finally:
        checker.kill()


def test_keep_days_removes_dead_dirs_and_never_live_ones(node: Node, populated: dict[str, Path]) -> None:
    live_before = {name: snapshot(populated[name]) for name in LIVE}
    result = prune(node.root, "--keep-days", "7")
    assert result.returncode == 0, result.stderr
    assert acted(result, "removed") == ["billing/10.0.1.3", "orders/10.0.0.5", "orders/10.0.1.2"], result.stdout
    assert sorted(line.split()[2] for line in result.stdout.splitlines() if line.startswith("kept live")) == \
        ["billing/10.0.0.2", "orders/10.0.0.1", "orders/10.0.0.9"], result.stdout
    for name in ("dead-10d", "dead-40d", "killed"):
        assert not populated[name].exists()
    assert populated["dead-2d"].exists()
    for name in LIVE:
        assert snapshot(populated[name]) == live_before[name]
    assert "removed 3 dirs" in result.stdout and "kept 3 live dirs" in result.stdout
    assert not list(node.root.rglob(".bootstrap-trash.*"))


def test_dry_run_changes_nothing_and_says_what_it_would_do(node: Node, populated: dict[str, Path]) -> None:
    before = snapshot(node.root)
    result = prune(node.root, "--keep-days", "7", "--compress-after-days", "1", "--max-bytes", "0", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert snapshot(node.root) == before
    assert acted(result, "would") == ["compress", "remove", "remove", "remove", "remove"]
    removes = sorted(line.split()[2] for line in result.stdout.splitlines() if line.startswith("would remove"))
    assert removes == ["billing/10.0.1.3", "orders/10.0.0.5", "orders/10.0.1.1", "orders/10.0.1.2"]
    compresses = [line.split()[2] for line in result.stdout.splitlines() if line.startswith("would compress")]
    assert compresses == ["orders/10.0.1.1/app.log.1"]  # the only rotated file left in a dir not removed first
    assert "dry run: nothing changed" in result.stdout.splitlines()[-1]


def test_compress_only_rotated_files_in_dead_dirs(node: Node, populated: dict[str, Path]) -> None:
    live_before = {name: snapshot(populated[name]) for name in LIVE}
    rotated = {name: (populated[name] / "app.log.1").read_bytes() for name in ("dead-2d", "dead-40d")}
    result = prune(node.root, "--compress-after-days", "1")
    assert result.returncode == 0, result.stderr
    assert acted(result, "compressed") == ["billing/10.0.1.3/app.log.1", "orders/10.0.1.1/app.log.1"]
    for name, data in rotated.items():
        assert gzip.decompress((populated[name] / "app.log.1.gz").read_bytes()) == data
        assert not (populated[name] / "app.log.1").exists()
        assert (populated[name] / "app.log").exists()  # the active file is not rotated
    for name in LIVE:
        assert snapshot(populated[name]) == live_before[name]
    assert acted(result, "removed") == []


def test_max_bytes_removes_oldest_dead_first_and_reports_an_unmet_cap(node: Node, populated: dict[str, Path]) -> None:
    def du(path: Path) -> int:
        return sum(p.lstat().st_blocks * 512 for p in [path, *path.rglob("*")])

    total = du(node.root)
    # Dead dirs from the oldest: dead-40d, killed (20 days), dead-10d, dead-2d. A cap that needs the two oldest dead dirs gone, not more.
    cap = total - du(populated["dead-40d"]) - du(populated["killed"]) // 2
    result = prune(node.root, "--max-bytes", str(cap))
    assert result.returncode == 0, result.stderr
    assert acted(result, "removed") == ["billing/10.0.1.3", "orders/10.0.0.5"]
    assert populated["dead-10d"].exists() and populated["dead-2d"].exists()
    assert du(node.root) <= cap
    assert "cap %d bytes met" % cap in result.stdout

    live_before = {name: snapshot(populated[name]) for name in LIVE}
    result = prune(node.root, "--max-bytes", "1Ki")
    assert result.returncode == 0, result.stderr
    assert acted(result, "removed") == ["orders/10.0.1.1", "orders/10.0.1.2"]
    assert any(line.startswith("cap not met:") and "in 3 live dirs, which are never touched" in line
               for line in result.stdout.splitlines())
    assert "cap 1024 bytes NOT met" in result.stdout
    for name in LIVE:
        assert snapshot(populated[name]) == live_before[name]


def test_two_prunes_at_once(node: Node, populated: dict[str, Path]) -> None:
    # One holds the root lock (made as a pruner makes it: 0600, its own): a second exits at once, 0,
    # having changed nothing.
    fd = os.open(node.root / ".bootstrap-prune.lock", os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    before = snapshot(node.root)
    try:
        result = prune(node.root, "--keep-days", "0")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("skipped: another prune is running") and result.stdout.count("\n") == 1
        assert snapshot(node.root) == before
    finally:
        os.close(fd)
    # Two real ones started together over many dead dirs: every dead dir is removed exactly once.
    for i in range(200):
        dead_dir(node.root, f"batch/10.1.{i // 250}.{i % 250}", 30)
    procs = [subprocess.Popen([BOOTSTRAP, "logs", "prune", "--root", str(node.root), "--keep-days", "7"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    removed = [line.split()[1] for out, _ in outputs for line in out.splitlines() if line.startswith("removed ")]
    assert len(removed) == len(set(removed)) == 203  # 200 + the 10- and 40-day and the killed agent's dirs
    assert not any((node.root / "batch").iterdir())
    for name in LIVE:
        assert populated[name].exists()


def append(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        chunk = b"z" * (64 << 10)
        while size > 0:
            size -= os.write(fd, chunk[:size])
    finally:
        os.close(fd)


def test_tmpfs_that_fills_up_is_freed_by_the_cap_and_live_dirs_stay(tmp_path: Path) -> None:
    """A 4 MiB tmpfs log root in a private mount namespace: dead dirs fill it until a live app's
    write would fail; one pass with --max-bytes frees room, and the live dir is untouched."""
    require_root()
    unshare, nsenter = require_tool("unshare"), require_tool("nsenter")
    mount_point = tmp_path / "i14-tmpfs"
    mount_point.mkdir()
    holder = subprocess.Popen([unshare, "--mount", "--propagation", "private", "--", "sh", "-c",
                               f'mount -t tmpfs -o size=4m i14-logs "{mount_point}" && echo mounted && exec sleep 600'],
                              stdout=subprocess.PIPE, text=True)
    view = Path(f"/proc/{holder.pid}/root") / str(mount_point).lstrip("/")  # the tmpfs, seen from here
    node = Node(tmp_path, mount_point, view)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "mounted\n"
        inside = (nsenter, "-t", str(holder.pid), "-m", "--")
        assert os.statvfs(view).f_blocks * os.statvfs(view).f_frsize == 4 << 20
        agent = node.start("orders", "10.0.0.1", prefix=inside)
        live = view / "orders" / "10.0.0.1"
        (live / "app.log").write_bytes(b"live\n" * 100000)  # ~0.5 MiB the live app wrote
        for i in range(12):  # dead dirs until the disk is nearly full
            dead_dir(view, f"orders/10.0.9.{i}", 30 - i, {"app.log": os.urandom(256 << 10)})
        free = os.statvfs(view).f_bavail * os.statvfs(view).f_frsize
        with pytest.raises(OSError) as full:
            append(live / "app.log", free + (64 << 10))
        assert full.value.errno == 28  # ENOSPC: the next big write of the live app fails
        (live / "app.log").write_bytes(b"live\n" * 100000)
        live_before = snapshot(live)
        result = prune(mount_point, "--max-bytes", "2Mi", prefix=inside)
        assert result.returncode == 0, result.stderr
        used = (os.statvfs(view).f_blocks - os.statvfs(view).f_bfree) * os.statvfs(view).f_frsize
        assert used <= 2 << 20
        removed = acted(result, "removed")
        assert removed == sorted(f"orders/10.0.9.{i}" for i in range(len(removed)))  # the oldest first
        assert 0 < len(removed) < 12
        assert snapshot(live) == live_before
        append(live / "app.log", 1 << 20)  # the app can write again
        assert agent.proc.poll() is None
    finally:
        node.stop()
        holder.kill()
        holder.wait(10)


def test_hostile_tree(node: Node, tmp_path: Path) -> None:
    """Symlinks out of the root, a log dir that is a symlink, newline names."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.log.1").write_text("keep me\n")
    (outside / ".bootstrap.jsonl").write_text("{}\n")
    age(outside, 30)  # it would be removed and compressed, were it ever reached
    d = dead_dir(node.root, "orders/10.0.0.3", 3)
    (d / "escape").symlink_to(outside)
    (d / "app.log.1").symlink_to(outside / "precious.log.1")  # a rotated name, but a link
    age(d, 3)
    (node.root / "orders" / "10.0.0.4").symlink_to(outside)  # looks like a log dir through the link
    (node.root / "linked-app").symlink_to(outside)
    newline = dead_dir(node.root, "orders/10.0.0.7\nremoved orders/10.0.0.8", 30, {"a\nb.log.1": b"x" * 100})
    outside_before = snapshot(outside)

    first = prune(node.root, "--keep-days", "7", "--compress-after-days", "1")
    assert first.returncode == 0, first.stderr
    assert acted(first, "compressed") == []  # app.log.1 is a link, precious.log.1 is outside
    assert acted(first, "removed") == ["orders/10.0.0.7\\x0aremoved"]
    assert "removed orders/10.0.0.7\\x0aremoved orders/10.0.0.8 (" in first.stdout
    assert len(first.stdout.splitlines()) == 2  # one line for the action, one summary
    assert not newline.exists() and d.exists()

    second = prune(node.root, "--keep-days", "0")
    assert second.returncode == 0, second.stderr
    assert acted(second, "removed") == ["orders/10.0.0.3"]
    assert snapshot(outside) == outside_before
    assert (node.root / "orders" / "10.0.0.4").is_symlink() and (node.root / "linked-app").is_symlink()


def test_unreadable_parts_are_reported_and_the_rest_is_done() -> None:
    """As an unprivileged pruner: a dir it cannot read and a rotated file it cannot read are errors
    (exit 1, one line each), the other dead dirs are still removed."""
    require_root()
    setpriv = require_tool("setpriv")
    base = Path(tempfile.mkdtemp(prefix="i14-prune-"))  # pytest's tmp_path is private to root
    tool = Path(tempfile.mkdtemp(prefix="i14-prune-tool-"))
    try:
        os.chmod(base, 0o755)
        unreadable_parts(base, setpriv, runnable_by_anyone(tool))
    finally:
        shutil.rmtree(base)
        shutil.rmtree(tool)


def unreadable_parts(root: Path, setpriv: str, command: tuple[str, ...]) -> None:
    ok = dead_dir(root, "orders/10.0.0.1", 30)
    locked = dead_dir(root, "orders/10.0.0.2", 3, {"app.log.1": b"secret\n" * 100})
    closed = dead_dir(root, "orders/10.0.0.3", 3)
    for path in [root, *root.rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    os.chown(locked / "app.log.1", 0, 0)
    os.chmod(locked / "app.log.1", 0o600)
    os.chown(closed, 0, 0)
    os.chmod(closed, 0o700)
    result = prune(root, "--keep-days", "7", "--compress-after-days", "1",
                   prefix=(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"), command=command)
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and all(line.startswith("bootstrap: error: ") for line in errors), errors
    assert "cannot open orders/10.0.0.3: Permission denied" in result.stderr
    assert "cannot compress orders/10.0.0.2/app.log.1: Permission denied" in result.stderr
    assert not ok.exists() and (locked / "app.log.1").exists() and closed.exists()
    assert "2 errors" in result.stdout.splitlines()[-1]


def test_metrics_file_passes_promtool(node: Node, populated: dict[str, Path], tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    metrics = tmp_path / "prune.prom"
    result = prune(node.root, "--keep-days", "7", "--metrics-file", str(metrics), prefix=("env", "NODE_NAME=node-7"))
    assert result.returncode == 0, result.stderr
    text = metrics.read_text()
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    samples = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and line[0] != "#"}
    assert samples['bootstrap_logs_prune_removed_dirs_total{node="node-7"}'] == 3
    assert samples['bootstrap_logs_prune_live_dirs{node="node-7"}'] == 3
    assert samples['bootstrap_logs_prune_freed_bytes_total{node="node-7"}'] > 0
    du = sum(p.lstat().st_blocks * 512 for p in [node.root, *node.root.rglob("*")])
    assert samples['bootstrap_logs_prune_root_bytes{node="node-7"}'] == pytest.approx(du, abs=64 << 10)


def test_loop_serves_metrics_and_stops_on_term(node: Node, populated: dict[str, Path]) -> None:
    import urllib.request

    port = free_port()
    loop = subprocess.Popen([BOOTSTRAP, "logs", "prune", "--root", str(node.root), "--keep-days", "7",
                             "--every", "3600", "--metrics-port", str(port), "--metrics-address", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert loop.stdout is not None
        while not (line := loop.stdout.readline()).startswith("summary:"):
            assert line, loop.stderr.read() if loop.stderr else ""
        # The summary line is printed at the end of the pass, just before the loop counts it.
        def after_first_pass() -> str | None:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            return text if 'bootstrap_logs_prune_passes_total{node="",result="ok"} 1.0' in text else None

        body = wait_until(after_first_pass)
        assert 'bootstrap_logs_prune_removed_dirs_total{node=""} 3.0' in body
        assert 'bootstrap_logs_prune_passes_total{node="",result="ok"} 1.0' in body
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(10) == 0
    finally:
        loop.kill()
        loop.wait(10)


def test_an_app_cannot_hold_the_pruners_lock(node: Node, populated: dict[str, Path]) -> None:
    """A lock file an app made first (another uid, 0644) and flocks is not the pruner's: the pass
    replaces it and runs; the one it makes is 0600, so an app can no longer open it."""
    lock = node.root / ".bootstrap-prune.lock"
    fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
    os.fchown(fd, 20001, 20001)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = prune(node.root, "--keep-days", "0")
        assert result.returncode == 0, result.stderr
        assert not result.stdout.startswith("skipped"), result.stdout
        assert "was not the pruner's own" in result.stderr
        st = lock.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (os.geteuid(), 0o600)
    finally:
        os.close(fd)


def test_cli_errors_are_one_line_with_documented_codes(tmp_path: Path) -> None:
    usage = prune(tmp_path, "--max-bytes", "lots")
    assert usage.returncode == 64
    assert usage.stderr.count("\n") == 1 and usage.stderr.startswith("bootstrap: error: --max-bytes='lots'")
    missing = prune(tmp_path / "nope")
    assert missing.returncode == 78
    assert missing.stderr.count("\n") == 1 and "is not a directory" in missing.stderr
    unknown = subprocess.run([BOOTSTRAP, "logs", "tidy"], capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 64 and "unknown logs command 'tidy'" in unknown.stderr
    huge = prune(tmp_path, "--keep-days", "9" * 100000)
    assert huge.returncode == 64 and huge.stderr.count("\n") == 1 and len(huge.stderr) < 300
    no_dir = prune(tmp_path, "--metrics-file", str(tmp_path / "missing" / "prune.prom"))
    assert no_dir.returncode == 1
    assert no_dir.stderr.startswith("bootstrap: error: cannot write the metrics file") and no_dir.stderr.count("\n") == 1


def test_lock_is_closed_in_every_forked_child(tmp_path: Path) -> None:
    fd = loglock.hold(str(tmp_path), recreate=lambda: None)
    assert fd is not None
    try:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child reports whether it still has the descriptor
            try:
                os.fstat(fd)
                os.write(write_end, b"open")
            except OSError:
                os.write(write_end, b"closed")
            os._exit(0)
        os.close(write_end)
        assert os.read(read_end, 16) == b"closed"
        os.waitpid(pid, 0)
        os.close(read_end)
        assert os.get_inheritable(fd) is False  # and exec drops it (O_CLOEXEC)
    finally:
        loglock.release(fd)
