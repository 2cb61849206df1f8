"""The run dir: `status.json` (replaced atomically), the `ready` marker the kubelet probes, and
the counters the metrics read. Every run-dir file is named here, and written here: the JSON
files through `write_json`, the marker by `write` and `clear_ready`.

`ready` exists exactly while the state is `ready`: it is created after status.json says ready,
and removed before status.json says anything else, so `cat ready` never passes wrongly.
"""
from __future__ import annotations

import os
import time

from bootstrap import procs
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# A row of the settings table (settings.Settings.run_dir), defined here because `probe` and
# `status` read it without loading the settings module.
RUN_DIR_VAR = "BOOTSTRAP_RUN_DIR"
DEFAULT_RUN_DIR = "/run/bootstrap"
STATES = ("starting", "ready", "not_ready", "stopping", "failed", "exited")
# The run dir's files; each has one writer.
STATUS_FILE = "status.json"  # the state: PID 1 (starting, stopping, exited) and the readiness checker
READY_FILE = "ready"  # the marker: exists exactly while the state is ready
SUPERVISOR_FILE = "supervisor.json"  # PID 1's counters, for the metrics
CHECKS_FILE = "checks.json"  # the readiness checker's counters, for the metrics
NOT_LIVE_FILE = "not-live"  # the probe ports: why the live port is closed, while it is
RUN_FILES = (STATUS_FILE, READY_FILE, SUPERVISOR_FILE, CHECKS_FILE, NOT_LIVE_FILE)
JSON_FILES = (STATUS_FILE, SUPERVISOR_FILE, CHECKS_FILE)
# The kubelet's probes, answered by `bootstrap probe --KIND`, the HTTP endpoint's /KIND and the
# probe ports (ready and live), all through `probe` or the same files.
READY_PROBE, LIVE_PROBE, STARTUP_PROBE = "ready", "live", "startup"
PROBE_KINDS = (READY_PROBE, LIVE_PROBE, STARTUP_PROBE)
_notify_fd = -1  # a pipe's non-blocking write end: the probe ports wake on every change


def notify_changes_to(fd: int) -> None:
    """After this, every state write sends one byte to fd (the readiness checker sets it)."""
    global _notify_fd
    _notify_fd = fd


def _notify() -> None:
    if _notify_fd < 0:
        return
    try:
        os.write(_notify_fd, b".")
    except OSError:
        pass  # full (a byte is pending anyway) or the reader is gone: it re-reads the state when back


def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out: on a nearly full disk a write can be short, and the
    next one then raises ENOSPC."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_atomic(path: str, data: bytes) -> None:
    """Replaces path with data, or raises OSError and leaves path as it was and no temporary
    file behind (a full or read-only run dir must not collect half-written leftovers)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        _remove(tmp)
        raise


def write_json(run_dir: str, name: str, doc: Mapping[str, Any]) -> None:
    """Replaces the run-dir file `name` (one of JSON_FILES) with `doc`, atomically: a reader sees
    the old file or the new one, never a part. Raises OSError (full or read-only run dir); each
    caller decides what that costs."""
    import json  # here, not at the top: `bootstrap probe` (readiness) needs only os.path.exists

    assert name in JSON_FILES, name
    write_atomic(os.path.join(run_dir, name), (json.dumps(doc, sort_keys=True) + "\n").encode())


def read_json(run_dir: str, name: str) -> dict[str, Any] | None:
    """The run-dir file `name` (one of JSON_FILES) as a JSON object, or None when it is missing or
    not (yet) one."""
    import json  # here, not at the top: `bootstrap probe` (readiness) needs only os.path.exists

    try:
        with open(os.path.join(run_dir, name), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read(run_dir: str) -> dict[str, Any] | None:
    return read_json(run_dir, STATUS_FILE)


def _lock(run_dir: str, wait: bool = True) -> int:
    """An exclusive flock on the run dir itself (no file of its own): status.json has two writers
    (the checker, and PID 1 for `update` while the checker runs), and each read-modify-write must
    not lose the other's. Returns the fd to close; without `wait`, BlockingIOError when held."""
    import fcntl  # loaded already in PID 1 (bootstrap.logdir) and the checker

    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        raise
    return fd


def update(run_dir: str, **fields: Any) -> None:
    """Sets fields of status.json, keeping its state, and the ready marker, as they are. For PID 1
    while the checker runs: the lock is only tried (PID 1 never waits on a helper), so a busy lock
    raises BlockingIOError and the caller retries on a later loop turn."""
    fd = _lock(run_dir, wait=False)
    try:
        status = read(run_dir)
        if status is not None:
            write_json(run_dir, STATUS_FILE, {**status, **fields})
    finally:
        os.close(fd)


def write(run_dir: str, state: str, fresh: bool = False, **fields: Any) -> dict[str, Any]:
    """Writes a new state, keeping fields (pid, ready_at, …) from the previous file unless fresh."""
    fd = _lock(run_dir)  # PID 1 writes only while no checker runs (it ends it first): never waits
    try:
        return _write(run_dir, state, fresh, **fields)
    finally:
        os.close(fd)


def _write(run_dir: str, state: str, fresh: bool, **fields: Any) -> dict[str, Any]:
    assert state in STATES, state
    ready_path = os.path.join(run_dir, READY_FILE)
    previous = {} if fresh else read(run_dir) or {}
    now = time.time()
    status = {**previous, **fields, "state": state}
    if previous.get("state") != state:
        status["since"] = iso_time(now)
    if state == "ready" and not status.get("ready_at"):
        status["ready_at"] = iso_time(now)
    status.setdefault("ready_at", None)
    status.setdefault("detail", "")
    if state != "ready":
        _remove(ready_path)
    write_json(run_dir, STATUS_FILE, status)
    if state == "ready":
        os.close(os.open(ready_path, os.O_WRONLY | os.O_CREAT, 0o644))
    _notify()
    return status


def forget_previous(run_dir: str) -> None:
    """At `run`'s start: the marker and the state an earlier container left in a run dir that
    outlives it (an emptyDir survives a container restart) must not pass a probe now. Errors are
    left to check_run_dir, which says them before the app starts."""
    for name in (READY_FILE, STATUS_FILE, NOT_LIVE_FILE):
        try:
            os.unlink(os.path.join(run_dir, name))
        except OSError:
            pass


def write_not_live(run_dir: str, problem: str | None) -> None:
    """RUN_DIR/not-live holds `problem`, or is gone for None; raises OSError (a missing file is no error)."""
    path = os.path.join(run_dir, NOT_LIVE_FILE)
    if problem:
        write_atomic(path, problem.encode())
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def read_not_live(run_dir: str) -> str:
    """Why the probe ports closed the live port, or "" while it is open (or there is none)."""
    try:
        with open(os.path.join(run_dir, NOT_LIVE_FILE), "rb") as fh:
            return fh.read(4096).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def clear_ready(run_dir: str) -> None:
    _remove(os.path.join(run_dir, READY_FILE))
    _notify()


def check_run_dir(run_dir: str) -> None:
    """Before the app starts: a run dir PID 1 cannot write is a setup error (exit 78), not a
    traceback. A marker left by an earlier run is removed here, so it cannot pass a probe now."""
    from bootstrap.errors import BootstrapError

    fix = "mount it read-write (e.g. an emptyDir) or set BOOTSTRAP_RUN_DIR"
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise BootstrapError(f"run dir {run_dir} is not writable (read-only mount or permissions); {fix}")
    try:
        clear_ready(run_dir)
    except OSError as exc:
        raise BootstrapError(f"run dir {run_dir}: cannot remove the ready marker of an earlier run "
                             f"({exc.strerror}); {fix}") from None


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _alive(pid: Any) -> bool:
    """A pid read from a run-dir file names a live process (anything else there is not one)."""
    return isinstance(pid, int) and pid > 0 and procs.exists(pid)


def probe(run_dir: str, kind: str) -> bool:
    """One of PROBE_KINDS. ready: the `ready` marker exists; live: supervisor and app alive;
    startup: ready once."""
    if kind == READY_PROBE:
        return os.path.exists(os.path.join(run_dir, READY_FILE))
    status = read(run_dir)
    if status is None:
        return False
    if kind == STARTUP_PROBE:
        return bool(status.get("ready_at"))
    return status.get("state") != "exited" and _alive(status.get("supervisor_pid")) and _alive(status.get("pid"))
