"""`bootstrap logs prune` against what apps and nodes do to a log root: a lock file deleted under a
running agent, an agent starting in a nested log dir while its outer dir is being removed, mounts
inside dead dirs, files that cannot be deleted. Each test names the broken behaviour it catches."""
from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from bootstrap.node import remove
from bootstrap.node.prune import Options, run_pass
from bootstrap.node.scan import Scan
from tests.process.test_prune import Node, acted, age, dead_dir, prune, snapshot
from tests.support.disk import du
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_root, require_tool

pytestmark = pytest.mark.fault




def summary_number(stdout: str, word: str) -> int:
    """The number after `word` in the summary line (`freed 123 bytes`, `root 456 bytes`)."""
    words = stdout.splitlines()[-1].split()
    return int(words[words.index(word) + 1])


def hold(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_live_agent_whose_lock_file_an_app_deleted_is_kept(tmp_path: Path) -> None:
    """Catches a pruner that takes a log dir without `.bootstrap.lock` for dead: an app ran
    `find logs -name '*.lock' -delete`, its agent still holds the lock on the unlinked file, and the
    cap removed the live dir. A dir without a lock file goes only by --keep-days, by its newest file."""
    root = tmp_path / "node-logs"
    root.mkdir()
    node = Node(tmp_path, root)
    try:
        agent = node.start("orders", "10.0.0.1")
        live = root / "orders" / "10.0.0.1"
        (live / "app.log").write_bytes(b"live line\n" * 20000)
        (live / "app.log.1").write_bytes(b"rotated\n" * 20000)
        age(live / "app.log.1", 3)
        (live / ".bootstrap.lock").unlink()
        old = dead_dir(root, "orders/10.0.0.2", 30)  # an agent older than the lock: only its age counts
        (old / ".bootstrap.lock").unlink()
        young = dead_dir(root, "orders/10.0.0.3", 2)
        (young / ".bootstrap.lock").unlink()
        def logs() -> dict[str, tuple[int, int, str]]:  # PID 1 may have linked a new lock meanwhile
            return {name: v for name, v in snapshot(live).items() if not name.startswith(".bootstrap.lock")}

        before = logs()
        result = prune(root, "--max-bytes", "0", "--keep-days", "7", "--compress-after-days", "1")
        assert result.returncode == 0, result.stderr
        assert logs() == before and agent.proc.poll() is None
        assert young.exists() and not old.exists()
        assert acted(result, "removed") == ["orders/10.0.0.2"] and acted(result, "compressed") == []
        assert "kept orders/10.0.0.3 (no lock file: " in result.stdout
        if not (live / ".bootstrap.lock").exists():
            assert "kept orders/10.0.0.1 (no lock file: " in result.stdout
        assert "cap 0 bytes NOT met" in result.stdout
    finally:
        node.stop()


def test_an_inner_lock_taken_after_the_scan_keeps_the_outer_dir(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a pruner that locks only the outer log dir ({app}) around its removal: an agent that
    locks the inner one ({app}/{ip}) after the scan, and one that makes a new inner dir and locks it,
    lost their directories with it."""
    outer = dead_dir(tmp_path, "orders", 30)
    inner = dead_dir(tmp_path, "orders/10.0.0.1", 30)
    other = dead_dir(tmp_path, "billing", 30)
    held: list[int] = []
    scan = Scan.run

    def agents_start_after_the_scan(self: Scan) -> int:
        total = scan(self)
        held.append(hold(inner / ".bootstrap.lock"))
        (other / "10.0.0.2").mkdir()
        held.append(hold(other / "10.0.0.2" / ".bootstrap.lock"))
        return total

    monkeypatch.setattr(Scan, "run", agents_start_after_the_scan)
    lines: list[str] = []
    try:
        report = run_pass(Options(str(tmp_path), keep_days=7), lines.append)
        assert outer.exists() and inner.exists() and (other / "10.0.0.2").exists(), lines
        assert report.removed_dirs == 0 and report.errors == 0
        assert sorted(line.split()[2] for line in lines if line.startswith("kept live")) == ["billing", "orders"]
    finally:
        for fd in held:
            os.close(fd)
    monkeypatch.undo()
    report = run_pass(Options(str(tmp_path), keep_days=7), lines.append)
    assert not outer.exists() and not other.exists() and report.removed_dirs == 2


def test_an_agent_locking_a_new_inner_dir_during_the_move_keeps_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a pruner that checks the nested locks only before moving a dir aside: an agent that
    makes and locks an inner log dir between that check and the rename had it deleted."""
    outer = dead_dir(tmp_path, "orders", 30)
    held: list[int] = []
    rename = os.rename

    def agent_starts_first(src: str, dst: str, **kwargs: int) -> None:
        if str(dst).startswith(".bootstrap-trash.") and not held:
            (outer / "10.0.0.1").mkdir()
            held.append(hold(outer / "10.0.0.1" / ".bootstrap.lock"))
        rename(src, dst, **kwargs)

    monkeypatch.setattr(remove.os, "rename", agent_starts_first)
    lines: list[str] = []
    try:
        report = run_pass(Options(str(tmp_path), keep_days=7), lines.append)
        assert held and (outer / "10.0.0.1" / ".bootstrap.lock").exists(), lines
        assert report.removed_dirs == 0 and report.freed_bytes == 0
        assert [line.split()[:3] for line in lines] == [["kept", "live", "orders"]]
        assert sorted(p.name for p in tmp_path.iterdir()) == [".bootstrap-prune.lock", "orders"]
    finally:
        for fd in held:
            os.close(fd)


def prune_with_mounts(tmp_path: Path, root: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`bootstrap logs prune --root root ARGS` in a private mount namespace after `script` made its
    mounts (nothing is seen outside, everything goes with the namespace); stdout ends with what
    `after` printed, when the script defines it."""
    require_root()
    env = {**os.environ, "ROOT": str(root), "BASE": str(tmp_path), "BOOTSTRAP": BOOTSTRAP}
    body = f'set -e\n{script}\nset +e\n"$BOOTSTRAP" logs prune --root "$ROOT" "$@"\nrc=$?\n' \
           'command -v after >/dev/null && after\nexit $rc\n'
    return subprocess.run([require_tool("unshare"), "--mount", "--propagation", "private", "--", "sh", "-c", body,
                           "sh", *args], env=env, capture_output=True, text=True, timeout=120)


def test_bind_mounts_and_a_tmpfs_inside_dead_dirs_are_never_entered(tmp_path: Path) -> None:
    """Catches a pruner that deletes across mount points: a bind mount of a directory outside the
    root (same filesystem, same st_dev) and a tmpfs inside dead dirs were emptied. A dir holding a
    mount point is not removed: one error line, exit 1; a bind mount at the top is not walked."""
    root = tmp_path / "node-logs"
    outside = tmp_path / "outside"
    (outside / "logs").mkdir(parents=True)
    (outside / "precious").write_text("keep me\n")
    far = dead_dir(outside / "logs", "billing/10.0.0.9", 30)  # seen only through the bind mount below
    bound = dead_dir(root, "orders/10.0.0.1", 30)
    (bound / "data").mkdir()
    with_tmpfs = dead_dir(root, "orders/10.0.0.2", 30)
    (with_tmpfs / "cache").mkdir()
    plain = dead_dir(root, "orders/10.0.0.3", 30)
    (root / "mounted").mkdir()
    age(root, 30)
    script = ('mount --bind "$BASE/outside" "$ROOT/orders/10.0.0.1/data"\n'
              'mount -t tmpfs -o size=1m prune-test "$ROOT/orders/10.0.0.2/cache"\n'
              'echo in-tmpfs > "$ROOT/orders/10.0.0.2/cache/precious"\n'
              'mount --bind "$BASE/outside/logs" "$ROOT/mounted"\n'
              'after() { cat "$ROOT/orders/10.0.0.2/cache/precious"; }')
    result = prune_with_mounts(tmp_path, root, script, "--keep-days", "7", "--max-bytes", "0")
    assert result.returncode == 1, result.stderr
    assert (outside / "precious").read_text() == "keep me\n" and far.exists()
    assert result.stdout.splitlines()[-1] == "in-tmpfs"
    assert bound.exists() and with_tmpfs.exists() and not plain.exists()
    errors = result.stderr.splitlines()
    assert sorted(errors) == [
        "bootstrap: error: orders/10.0.0.1/data is a mount point: orders/10.0.0.1 is not removed",
        "bootstrap: error: orders/10.0.0.2/cache is a mount point: orders/10.0.0.2 is not removed"], errors
    assert acted(result, "removed") == ["orders/10.0.0.3"]


def test_a_file_that_cannot_be_deleted_is_not_counted_as_freed(tmp_path: Path) -> None:
    """Catches a pruner that reports a dead dir's measured size as freed when a file in it cannot be
    deleted: the report said `removed`, `cap met` and the freed bytes while `du` said otherwise, and
    the next pass counted the same leftovers again."""
    require_root()
    chattr = require_tool("chattr")
    root = tmp_path / "node-logs"
    stuck_dir = dead_dir(root, "orders/10.0.0.1", 40, {"app.log": os.urandom(256 << 10),
                                                       "stuck.log.1": os.urandom(1 << 20)})
    next_dir = dead_dir(root, "orders/10.0.0.2", 30, {"app.log": os.urandom(2 << 20)})
    young = dead_dir(root, "orders/10.0.0.3", 2, {"app.log": os.urandom(64 << 10)})
    stuck = stuck_dir / "stuck.log.1"
    subprocess.run([chattr, "+i", str(stuck)], check=True)
    try:
        before = du(root)
        cap = before - du(stuck_dir) + (64 << 10)  # met by the stuck dir alone, were it all gone
        first = prune(root, "--max-bytes", str(cap))
        after = du(root)
        assert first.returncode == 1
        assert "cannot delete" in first.stderr and "stuck.log.1" in first.stderr
        assert summary_number(first.stdout, "freed") == before - after
        assert summary_number(first.stdout, "root") == after
        assert any(line.startswith("partly removed orders/10.0.0.1: ") for line in first.stdout.splitlines())
        assert not next_dir.exists() and young.exists()  # the cap went on with real bytes
        assert acted(first, "removed") == ["orders/10.0.0.2"]
        assert ("cap %d bytes met" % cap in first.stdout) == (after <= cap)
        second = prune(root, "--max-bytes", str(cap))
        assert second.returncode == 1 and summary_number(second.stdout, "freed") == 0
        assert du(root) == after
    finally:
        for path in root.rglob(stuck.name):  # wherever the pruner left it, so that it can be cleaned up
            subprocess.run([chattr, "-i", str(path)], check=True)
