"""The run dir: `status.json` (replaced atomically) and the `ready` marker the kubelet probes.

`ready` exists exactly while the state is `ready`: it is created after status.json says ready,
and removed before status.json says anything else, so `cat ready` never passes wrongly.
"""
from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# A row of the settings table (settings.Settings.run_dir), defined here because `probe` and
# `status` read it without loading the settings module.
RUN_DIR_VAR = "BOOTSTRAP_RUN_DIR"
DEFAULT_RUN_DIR = "/run/bootstrap"
STATES = ("starting", "ready", "not_ready", "stopping", "failed", "exited")
STATUS_FILE = "status.json"
READY_FILE = "ready"
SUPERVISOR_FILE = "supervisor.json"  # PID 1's counters for the metrics; written by PID 1 only


def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_json(path: str) -> dict[str, Any] | None:
    """A JSON object from a run-dir file, or None when it is missing or not (yet) one."""
    import json  # here, not at the top: `bootstrap probe` (readiness) needs only os.path.exists

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read(run_dir: str) -> dict[str, Any] | None:
    return read_json(os.path.join(run_dir, STATUS_FILE))


def write(run_dir: str, state: str, fresh: bool = False, **fields: Any) -> dict[str, Any]:
    """Writes a new state, keeping fields (pid, ready_at, …) from the previous file unless fresh."""
    import json

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
    write_atomic(os.path.join(run_dir, STATUS_FILE), (json.dumps(status, sort_keys=True) + "\n").encode())
    if state == "ready":
        os.close(os.open(ready_path, os.O_WRONLY | os.O_CREAT, 0o644))
    return status


def clear_ready(run_dir: str) -> None:
    _remove(os.path.join(run_dir, READY_FILE))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def probe(run_dir: str, kind: str) -> bool:
    """readiness: the `ready` marker exists; live: supervisor and app alive; startup: ready once."""
    if kind == "ready":
        return os.path.exists(os.path.join(run_dir, READY_FILE))
    status = read(run_dir)
    if status is None:
        return False
    if kind == "startup":
        return bool(status.get("ready_at"))
    return status.get("state") != "exited" and _alive(status.get("supervisor_pid")) and _alive(status.get("pid"))
