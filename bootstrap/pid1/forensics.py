"""Why the app ended, from the evidence it left: read once by PID 1 after the app is reaped.

- `out-of-memory-error`: the JVM exited on an OutOfMemoryError. -XX:+ExitOnOutOfMemoryError exits
  with code 3 after printing "Terminating due to java.lang.OutOfMemoryError: <kind>"; -XX:+LogVMOutput
  copies that line into this start's jvm-STAMP-pidN.log, so the kind (Java heap space, Metaspace, …)
  is known without piping the app's output. An OutOfMemoryError the JDK's own Java code throws (direct
  buffers, "unable to create native thread") does not reach the VM's exit hook: the JVM ends as its
  code decides and the reason says `exited`.
- `oom-killed`: SIGKILL (or a shell's 137) while the cgroup's OOM-kill count (v1 memory.oom_control,
  v2 memory.events) went up since the start.
- `crash`: the JVM wrote an hs_err file for this start.
- `readiness-failed`: bootstrap stopped it (the kubelet's liveness kill, or `exit_on_failed`) after
  the readiness state turned `failed`; `ready_failure` holds the checker's reason, e.g. `not ready
  within 300s: tcp 127.0.0.1:9029: connection refused`.
- `liveness-failed`: bootstrap stopped it while the probe ports held the live port closed (the
  kubelet's liveness kill): the app stopped (SIGSTOP), or not ready longer than BOOTSTRAP_LIVE_WINDOW;
  `live_failure` holds why.
- `stopped`: bootstrap stopped it. Otherwise `exited` or `signal`, as `cause` says.
"""
from __future__ import annotations

import os
import signal

from bootstrap import logdir
from bootstrap.pid1 import cgroups
from bootstrap.pid1.jvm import JvmPlan

OOM_MARK = b"Terminating due to java.lang.OutOfMemoryError: "
THREAD_DUMP_MARK = b"Full thread dump"
TAIL = 4 << 20  # only the end of a VM log is read: the exit line is near the end
READINESS_FAILED = "readiness-failed"
LIVENESS_FAILED = "liveness-failed"
FAILED_REASONS = (READINESS_FAILED, LIVENESS_FAILED)  # stops that are no clean stop


def _this_start(log_dir: str, prefix: str, suffix: str) -> list[str]:
    try:
        names = [e.name for e in os.scandir(log_dir) if e.name.startswith(prefix) and e.name.endswith(suffix)]
    except OSError:
        return []
    return sorted(os.path.join(log_dir, n) for n in names)


def _tail(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL))
            return fh.read()
    except OSError:
        return b""


def examine(plan: JvmPlan | None, app_code: int, cause: str, ready_failure: str = "",
            live_failure: str = "") -> dict[str, object]:
    """`reason` plus what was found: oom_error, heap_dump, hs_err, thread_dump, vm_log, oom_kills,
    ready_failure, live_failure. `ready_failure` is the checker's detail when the stop came after
    `failed`; `live_failure` why the live port was closed when it came."""
    found: dict[str, object] = {}
    oom_error = None
    if plan is not None:
        stamp = plan.stamp
        for vm_log in _this_start(plan.log_dir, f"jvm-{stamp}-", ".log"):
            text = _tail(vm_log)
            found["vm_log"] = vm_log
            at = text.rfind(OOM_MARK)
            if at >= 0:
                line = text[at + len(OOM_MARK):].split(b"\n", 1)[0]
                oom_error = line.decode(errors="replace").strip()[:200] or "unknown"
            if THREAD_DUMP_MARK in text:
                found["thread_dump"] = vm_log
        hs_errs = _this_start(plan.log_dir, f"hs_err-{stamp}-", ".log")
        if hs_errs:
            found["hs_err"] = hs_errs[-1]
        if plan.heap_dump and os.path.isfile(plan.heap_dump):
            found["heap_dump"] = plan.heap_dump
        before = plan.limits.oom_kills
        now = cgroups.oom_kills(plan.limits.oom_source)
        if before is not None and now is not None and now > before:
            found["oom_kills"] = now - before
    killed = app_code == -signal.SIGKILL or app_code == 128 + signal.SIGKILL
    if cause in (logdir.STOPPED, logdir.KILLED_AFTER_TIMEOUT) and ready_failure:
        reason = READINESS_FAILED
        found["ready_failure"] = ready_failure
    elif cause in (logdir.STOPPED, logdir.KILLED_AFTER_TIMEOUT) and live_failure:
        reason = LIVENESS_FAILED
        found["live_failure"] = live_failure
    elif cause in (logdir.STOPPED, logdir.KILLED_AFTER_TIMEOUT):
        reason = logdir.STOPPED
    elif oom_error is not None:
        reason = "out-of-memory-error"
        found["oom_error"] = oom_error
    elif killed and found.get("oom_kills"):
        reason = "oom-killed"
    elif "hs_err" in found:
        reason = "crash"
    else:
        reason = cause
    return {"reason": reason, **found}


def summary(found: dict[str, object]) -> str:
    """The words added to the termination message."""
    reason = found["reason"]
    if reason == "out-of-memory-error":
        text = f"OutOfMemoryError ({found['oom_error']})"
    elif reason == "oom-killed":
        text = f"killed by the kernel OOM killer ({found['oom_kills']} OOM kill(s) in the cgroup)"
    elif reason == "crash":
        text = f"JVM crash, see {found['hs_err']}"
    elif reason == READINESS_FAILED:
        return f"readiness failed: {found['ready_failure']}"
    elif reason == LIVENESS_FAILED:
        return f"liveness failed: {found['live_failure']}"
    else:
        return f"thread dump {found['thread_dump']}" if "thread_dump" in found else ""
    for key, label in (("heap_dump", "heap dump"), ("hs_err", "hs_err"), ("thread_dump", "thread dump")):
        if key in found and not (reason == "crash" and key == "hs_err"):
            text += f", {label} {found[key]}"
    return text
