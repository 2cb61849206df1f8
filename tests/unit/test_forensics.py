"""forensics.examine: the reason an app ended, from files a JVM leaves and the cgroup's OOM count.
The files here are shaped like the real ones (tests/jvm makes real ones with a real JVM)."""
from __future__ import annotations

import signal
from pathlib import Path

from bootstrap.pid1 import forensics, jvm
from bootstrap.pid1.cgroups import Limits

STAMP = "20260101T000000000Z"


def setup(tmp_path: Path, oom_before: int | None = 0, log_dir_name: str = "logs") -> tuple[jvm.JvmPlan, Path, Path]:
    log_dir = tmp_path / log_dir_name
    log_dir.mkdir()
    oom_file = tmp_path / "memory.oom_control"
    oom_file.write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom_before or 0}\n")
    limits = Limits(1 << 30, "memory.stat", None, "", oom_before, str(oom_file) if oom_before is not None else None)
    plan = jvm.make_plan("auto", limits, str(log_dir), str(tmp_path), {}, (), stamp=STAMP)
    return plan, log_dir, oom_file


def vm_log(log_dir: Path, tail: str, stamp: str = STAMP) -> Path:
    path = log_dir / f"jvm-{stamp}-pid7.log"
    path.write_text("<?xml version='1.0' encoding='UTF-8'?>\n<hotspot_log>\n<tty>\n" + tail)
    return path


def test_out_of_memory_error_with_its_kind_and_dump(tmp_path: Path) -> None:
    plan, log_dir, _ = setup(tmp_path)
    log = vm_log(log_dir, "Terminating due to java.lang.OutOfMemoryError: Java heap space\n")
    assert plan.heap_dump
    Path(plan.heap_dump).write_bytes(b"JAVA PROFILE 1.0.2\0")
    found = forensics.examine(plan, 3, "exited")
    assert found == {"reason": "out-of-memory-error", "oom_error": "Java heap space", "vm_log": str(log),
                     "heap_dump": plan.heap_dump}
    assert forensics.summary(found) == f"OutOfMemoryError (Java heap space), heap dump {plan.heap_dump}"


def test_an_ipv6_log_dir_still_names_the_error_and_its_files(tmp_path: Path) -> None:
    """The ':' of an IPv6 {ip} in the log dir: the JVM still writes its dump, VM log and hs_err
    there, and they are found at exit."""
    plan, log_dir, _ = setup(tmp_path, log_dir_name="fd00::5")
    log = vm_log(log_dir, "Terminating due to java.lang.OutOfMemoryError: Java heap space\n")
    assert plan.heap_dump == f"{log_dir}/heapdump-{STAMP}.hprof"
    Path(plan.heap_dump).write_bytes(b"JAVA PROFILE 1.0.2\0")
    found = forensics.examine(plan, 3, "exited")
    assert found == {"reason": "out-of-memory-error", "oom_error": "Java heap space", "vm_log": str(log),
                     "heap_dump": plan.heap_dump}
    hs_err = log_dir / f"hs_err-{STAMP}-7.log"
    hs_err.write_text("# A fatal error has been detected by the Java Runtime Environment:\n")
    log.unlink()
    assert forensics.examine(plan, 1, "exited")["hs_err"] == str(hs_err)


def test_files_of_an_earlier_start_are_not_this_exit(tmp_path: Path) -> None:
    plan, log_dir, _ = setup(tmp_path)
    vm_log(log_dir, "Terminating due to java.lang.OutOfMemoryError: Metaspace\n", stamp="20251231T000000000Z")
    (log_dir / "hs_err-20251231T000000000Z-7.log").write_text("# A fatal error")
    assert forensics.examine(plan, 1, "exited") == {"reason": "exited"}


def test_kernel_oom_kill(tmp_path: Path) -> None:
    plan, _, oom_file = setup(tmp_path, oom_before=4)
    oom_file.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n")
    found = forensics.examine(plan, -signal.SIGKILL, "signal")
    assert found == {"reason": "oom-killed", "oom_kills": 1}
    assert "kernel OOM killer" in forensics.summary(found)
    # a shell in between reports the kill as 137
    assert forensics.examine(plan, 137, "exited")["reason"] == "oom-killed"


def test_a_sigkill_without_an_oom_kill_is_just_a_signal(tmp_path: Path) -> None:
    plan, _, _ = setup(tmp_path, oom_before=4)
    assert forensics.examine(plan, -signal.SIGKILL, "signal") == {"reason": "signal"}


def test_crash_names_the_hs_err_file(tmp_path: Path) -> None:
    plan, log_dir, _ = setup(tmp_path)
    hs_err = log_dir / f"hs_err-{STAMP}-7.log"
    hs_err.write_text("# A fatal error has been detected by the Java Runtime Environment:\n")
    found = forensics.examine(plan, -signal.SIGABRT, "signal")
    assert found["reason"] == "crash" and found["hs_err"] == str(hs_err)
    assert forensics.summary(found) == f"JVM crash, see {hs_err}"


def test_a_stop_is_a_stop_and_keeps_the_thread_dump(tmp_path: Path) -> None:
    plan, log_dir, _ = setup(tmp_path)
    log = vm_log(log_dir, '2026-01-01 00:00:00\nFull thread dump OpenJDK 64-Bit Server VM (17.0.21.1+2 mixed mode):\n')
    found = forensics.examine(plan, -signal.SIGKILL, "killed-after-timeout")
    assert found == {"reason": "stopped", "vm_log": str(log), "thread_dump": str(log)}
    assert forensics.summary(found) == f"thread dump {log}"


def test_without_a_plan_the_cause_is_the_reason() -> None:
    assert forensics.examine(None, 0, "exited") == {"reason": "exited"}


def test_a_stop_after_a_failure_names_it_readiness_first() -> None:
    found = forensics.examine(None, 143, "stopped", live_failure="the app (pid 7) is stopped")
    assert found == {"reason": "liveness-failed", "live_failure": "the app (pid 7) is stopped"}
    assert forensics.summary(found) == "liveness failed: the app (pid 7) is stopped"
    both = forensics.examine(None, 143, "stopped", ready_failure="not ready within 1s", live_failure="state failed")
    assert both == {"reason": "readiness-failed", "ready_failure": "not ready within 1s"}
    assert forensics.examine(None, 0, "exited", live_failure="x") == {"reason": "exited"}  # it ended on its own
