"""The edges of `jvm: auto` with a real JVM (the host's OpenJDK 17): an IPv6 log dir, flags the JVM
never reads (JAVA_OPTS of an exec-form command) or reads from an @argfile, HotSpot's own
MinRAMPercentage rule, and a cgroup limit larger than the host."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bootstrap.pid1 import cgroups, jvm
from tests.jvm.conftest import jvmlab
from tests.jvm.test_jvm_memory import picked_up
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_tool

pytestmark = pytest.mark.jvm
MiB = 1 << 20
CGROUP = "i12b-edge"


def test_an_ipv6_log_dir_gets_the_dump_the_gc_log_and_the_reason(classes: Path, tmp_path: Path) -> None:
    """POD_IP fd00::5: the log dir has '::'. HotSpot takes it in HeapDumpPath, ErrorFile and LogFile;
    -Xlog only in a quoted file name, which JAVA_TOOL_OPTIONS keeps inside single quotes."""
    run = jvmlab.under_agent("HeapFill", classes, 256 * MiB, tmp_path, CGROUP, POD_IP="fd00::5")
    assert run.oom_kills == 0
    log_dir = tmp_path / "logs" / "jvmlab" / "fd00::5"
    record = json.loads((log_dir / ".bootstrap.jsonl").read_text().splitlines()[-1])
    assert record["reason"] == "out-of-memory-error" and record["oom_error"] == "Java heap space", run.stderr
    dump = Path(record["heap_dump"])
    assert dump.parent == log_dir and dump.read_bytes()[:18] == b"JAVA PROFILE 1.0.2"
    assert Path(record["vm_log"]).parent == log_dir
    assert (log_dir / "gc.log").stat().st_size > 0
    assert "OutOfMemoryError (Java heap space)" in (tmp_path / "termination-log").read_text()


def test_java_opts_of_an_exec_form_command_do_not_keep_our_heap_out(classes: Path, tmp_path: Path) -> None:
    """`java -cp … HeapFill` never reads JAVA_OPTS: its 75% would be a no-op, so our -Xmx is set
    and the heap is the budget's, not the JVM's default 25%."""
    run = jvmlab.under_agent("HeapFill", classes, 512 * MiB, tmp_path, CGROUP, JAVA_OPTS="-XX:MaxRAMPercentage=75")
    budget = jvm.budget(512 * MiB)
    assert budget is not None and f"-Xmx{budget.heap // MiB}M" in picked_up(run)
    max_heap = run.last("max_heap")
    assert max_heap is not None and max_heap > 512 * MiB * 0.6, max_heap
    assert run.oom_kills == 0 and run.record["reason"] == "out-of-memory-error"


def test_a_heap_flag_in_an_argfile_is_the_users(classes: Path, tmp_path: Path) -> None:
    argfile = tmp_path / "jvm.args"
    argfile.write_text("# sized by the team\n-XX:MaxRAMPercentage=40\n")
    run = jvmlab.under_agent("HeapFill", classes, 512 * MiB, tmp_path, CGROUP, java_flags=(f"@{argfile}",))
    assert not [o for o in picked_up(run) if o.startswith("-Xmx")]
    max_heap = run.last("max_heap")
    assert max_heap is not None and 512 * MiB * 0.35 < max_heap <= 512 * MiB * 0.40, max_heap
    assert run.oom_kills == 0 and run.record["reason"] == "out-of-memory-error"


@pytest.mark.parametrize("memory,percent", [(1024, "50"), (1024, "10"), (1024, "12"), (512, "25"), (256, "25"),
                                            (300, "40"), (4096, "2")])
def test_hotspot_reads_min_ram_percentage_only_where_the_plan_says(memory: int, percent: str) -> None:
    java = require_tool("java")
    out = subprocess.run([java, f"-XX:MaxRAM={memory}m", f"-XX:MinRAMPercentage={percent}", "-XX:+UseSerialGC",
                          "-XX:+PrintFlagsFinal", "-version"], capture_output=True, text=True, check=True).stdout
    max_heap = next(int(line.split()[3]) for line in out.splitlines() if " MaxHeapSize " in line)
    by_min = memory * MiB * float(percent) / 100
    if jvm.min_ram_percentage_applies(memory * MiB, float(percent)):
        assert abs(max_heap - by_min) <= 2 * MiB, max_heap
    else:  # 25% of the memory, or HotSpot's built-in MaxHeapSize when that is larger
        assert abs(max_heap - max(memory * MiB // 4, jvm.HOTSPOT_MAX_HEAP)) <= 2 * MiB, max_heap


def test_a_limit_above_the_host_is_capped_at_its_memory(classes: Path, tmp_path: Path) -> None:
    host, _ = cgroups.host_memory()
    assert host
    env = jvmlab.app_env(tmp_path)
    run = jvmlab.run_in_cgroup([BOOTSTRAP, "plan", "--json", "--", "java", "-jar", "app.jar"], env, 8 * host, CGROUP)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)["jvm"]
    assert doc["limits"]["memory"] == host
    assert "capped at MemTotal" in doc["limits"]["memory_source"]
    budget = jvm.budget(host)
    assert budget is not None and f"-Xmx{budget.heap // MiB}M" in doc["java_tool_options"].split()
