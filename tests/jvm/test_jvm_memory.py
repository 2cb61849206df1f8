"""A real JVM (the host's OpenJDK 17) under `bootstrap run` as PID 1, in a cgroup v1 memory group
each test creates and removes: one workload per limit (the whole matrix is `make bench`), and each
way an app can end, as the exit record and the termination message name it."""
from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from bootstrap.pid1 import jvm
from tests.jvm.conftest import jvmlab
from tests.support.agent import Agent
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_tool

pytestmark = pytest.mark.jvm
MiB = 1 << 20
CGROUP = "i12b-test"


def picked_up(run: jvmlab.Run) -> list[str]:
    """The JAVA_TOOL_OPTIONS the JVM itself reports it used."""
    for line in run.stderr.splitlines():
        if line.startswith("Picked up JAVA_TOOL_OPTIONS: "):
            return line.split(": ", 1)[1].split()
    raise AssertionError(f"the JVM did not pick up JAVA_TOOL_OPTIONS:\n{run.stderr}")


def status(work: Path) -> dict[str, object]:
    return json.loads((work / "run" / "status.json").read_text())


def test_plan_reads_the_real_cgroup_limit(classes: Path, tmp_path: Path) -> None:
    env = jvmlab.app_env(tmp_path)
    run = jvmlab.run_in_cgroup([BOOTSTRAP, "plan", "--json", "--", "java", "-jar", "app.jar"], env, 512 * MiB, CGROUP)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)["jvm"]
    assert doc["limits"]["memory"] == 512 * MiB
    assert doc["limits"]["memory_source"].startswith("/sys/fs/cgroup/memory/i12b-test-")
    budget = jvm.budget(512 * MiB)
    assert budget is not None
    assert f"-Xmx{budget.heap // MiB}M" in doc["java_tool_options"].split()
    assert all("reason" in flag for flag in doc["flags"])


def test_256mi_heap_filler_ends_as_a_recorded_out_of_memory_error(classes: Path, tmp_path: Path) -> None:
    run = jvmlab.under_agent("HeapFill", classes, 256 * MiB, tmp_path, CGROUP)
    assert run.oom_kills == 0, "the kernel killed something"
    assert run.returncode == 3, run.stderr  # bootstrap exits with the JVM's code
    budget = jvm.budget(256 * MiB)
    assert budget is not None
    assert f"-Xmx{budget.heap // MiB}M" in picked_up(run)
    record = run.record
    assert record["reason"] == "out-of-memory-error" and record["oom_error"] == "Java heap space"
    assert record["cause"] == "exited" and record["raw_exit_code"] == 3
    dump = Path(str(record["heap_dump"]))
    assert dump.parent == run.log_dir and dump.read_bytes()[:18] == b"JAVA PROFILE 1.0.2"
    filled = run.last("filled")
    assert filled is not None and filled >= budget.heap * 0.9  # the heap it was given was usable
    assert status(tmp_path)["reason"] == "out-of-memory-error"
    message = (tmp_path / "termination-log").read_text()
    assert "OutOfMemoryError (Java heap space)" in message and str(dump) in message
    assert (run.log_dir / "gc.log").stat().st_size > 0  # GC logging went to the log dir


def test_512mi_class_leak_ends_as_a_metaspace_out_of_memory_error(classes: Path, tmp_path: Path) -> None:
    run = jvmlab.under_agent("ClassFill", classes, 512 * MiB, tmp_path, CGROUP)
    assert run.oom_kills == 0
    assert run.record["reason"] == "out-of-memory-error" and run.record["oom_error"] == "Metaspace"
    assert Path(str(run.record["heap_dump"])).exists()


def test_1gi_500_threads_run_and_exit_cleanly(classes: Path, tmp_path: Path) -> None:
    run = jvmlab.under_agent("Threads", classes, 1024 * MiB, tmp_path, CGROUP)
    assert run.oom_kills == 0
    assert run.returncode == 0 and run.last("threads") == 500, run.stderr
    assert run.record["reason"] == "exited" and "heap_dump" not in run.record
    assert run.peak < 1024 * MiB


def test_2gi_direct_buffers_are_capped_below_the_kernel_limit(classes: Path, tmp_path: Path) -> None:
    run = jvmlab.under_agent("DirectFill", classes, 2048 * MiB, tmp_path, CGROUP)
    assert run.oom_kills == 0
    budget = jvm.budget(2048 * MiB)
    assert budget is not None
    filled = run.last("filled")
    assert filled is not None and budget.direct - 8 * MiB <= filled <= budget.direct
    # the JDK's Java code throws this one; HotSpot's exit hook never sees it (documented)
    assert "Cannot reserve" in run.stderr and run.returncode == 1
    assert run.record["reason"] == "exited"


def test_a_kernel_oom_kill_is_named(classes: Path, tmp_path: Path) -> None:
    """jvm: off and a heap larger than the limit: the kernel kills the JVM; the record says so."""
    run = jvmlab.under_agent("HeapFill", classes, 256 * MiB, tmp_path, CGROUP, java_flags=("-Xmx1g",),
                             BOOTSTRAP_JVM="off")
    assert run.oom_kills >= 1
    assert "Picked up JAVA_TOOL_OPTIONS" not in run.stderr
    record = run.record
    assert record["reason"] == "oom-killed" and record["cause"] == "signal" and record["raw_exit_code"] == 137
    assert int(str(record["oom_kills"])) >= 1
    assert "killed by the kernel OOM killer" in (tmp_path / "termination-log").read_text()


def test_a_crash_names_its_hs_err_file_and_the_users_flag_wins(classes: Path, tmp_path: Path) -> None:
    run = jvmlab.under_agent("HeapFill", classes, 512 * MiB, tmp_path, CGROUP,
                             java_flags=("-Xmx64m", "-XX:+CrashOnOutOfMemoryError", "-XX:-CreateCoredumpOnCrash"))
    assert run.oom_kills == 0
    options = picked_up(run)
    assert not any(o.startswith("-Xmx") for o in options)  # the user's -Xmx64m on the command line wins
    assert "-XX:+ExitOnOutOfMemoryError" not in options  # it conflicts with CrashOnOutOfMemoryError
    record = run.record
    assert record["reason"] == "crash"  # without a core dump HotSpot aborts with exit 1, not SIGABRT
    hs_err = Path(str(record["hs_err"]))
    assert hs_err.parent == run.log_dir and "A fatal error has been detected" in hs_err.read_text()
    assert f"JVM crash, see {hs_err}" in (tmp_path / "termination-log").read_text()


def test_a_stop_that_times_out_leaves_a_thread_dump(classes: Path, tmp_path: Path) -> None:
    env = jvmlab.app_env(tmp_path, BOOTSTRAP_THREAD_DUMP="1", BOOTSTRAP_STOP_TIMEOUT="3")
    agent = Agent([BOOTSTRAP, "run", "--", "java", "-cp", str(classes), "SlowStop"], env, pid1=True)
    try:
        agent.wait_line(r"^up$", timeout=30)
        agent.signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 128 + signal.SIGKILL
    finally:
        agent.kill()
    log_dir = tmp_path / "logs" / "jvmlab" / "10.0.0.9"
    record = json.loads((log_dir / ".bootstrap.jsonl").read_text().splitlines()[-1])
    assert record["cause"] == "killed-after-timeout" and record["reason"] == "stopped"
    dump = Path(record["thread_dump"])
    assert dump.parent == log_dir
    text = dump.read_text()
    assert "Full thread dump" in text and "slow-shutdown-hook" in text


def test_no_heap_dump_when_the_log_root_has_no_room(classes: Path, tmp_path: Path) -> None:
    """A 64 MiB tmpfs as the log root: a 112 MiB heap cannot be dumped there, so no dump is
    asked for; the OutOfMemoryError is still recorded (from the VM log, which is small)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    subprocess.run([require_tool("mount"), "-t", "tmpfs", "-o", "size=64m", "i12b-logs", str(logs)], check=True)
    try:
        run = jvmlab.under_agent("HeapFill", classes, 256 * MiB, tmp_path, CGROUP)
        assert run.oom_kills == 0
        assert "-XX:+HeapDumpOnOutOfMemoryError" not in picked_up(run)
        assert run.record["reason"] == "out-of-memory-error" and "heap_dump" not in run.record
        assert run.log_dir is not None and not list(run.log_dir.glob("*.hprof"))
    finally:
        subprocess.run([require_tool("umount"), str(logs)], check=True)
