"""jvm: the memory split, the user's flags winning, heap-dump room and pruning, the plan's text."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bootstrap.pid1 import jvm, jvmflags
from bootstrap.pid1.cgroups import Limits
from tests.support.paths import REPO

MiB = 1 << 20
GiB = 1 << 30


def limits(memory: int | None) -> Limits:
    return Limits(memory, "memory.stat" if memory else "no limit", None, "no CPU quota", 0, None)


def plan(tmp_path: Path, memory: int | None = 1 * GiB, environ: dict[str, str] | None = None,
         command: tuple[str, ...] = ("java", "-jar", "app.jar"), mode: str = "auto", ip: str = "10.0.0.1") -> jvm.JvmPlan:
    log_dir = tmp_path / "logs" / "app" / ip
    log_dir.mkdir(parents=True, exist_ok=True)
    return jvm.make_plan(mode, limits(memory), str(log_dir), str(tmp_path / "logs"), environ or {}, command,
                         stamp="20260101T000000000Z")


# a start command that reads each variable: JAVA_OPTS and CATALINA_OPTS reach a JVM only through one
SHELL_JAVA = ("sh", "-c", "exec java $JAVA_OPTS -jar app.jar")
READS = {"JAVA_TOOL_OPTIONS": ("java", "-jar", "app.jar"), "JDK_JAVA_OPTIONS": ("java", "-jar", "app.jar"),
         "JAVA_OPTS": SHELL_JAVA, "CATALINA_OPTS": ("/usr/share/tomcat10/bin/catalina.sh", "run")}


def words(p: jvm.JvmPlan) -> list[str]:
    return p.java_tool_options.split()


def named(p: jvm.JvmPlan, name: str) -> list[str]:
    return [w for w in words(p) if jvmflags.flag_name(w) == name]


@pytest.mark.parametrize("limit", [256 * MiB, 512 * MiB, 1 * GiB, 2 * GiB, 8 * GiB])
def test_the_split_adds_up_and_leaves_the_heap_the_rest(limit: int) -> None:
    b = jvm.budget(limit)
    assert b is not None
    non_heap = b.metaspace + b.code_cache + b.direct + b.threads * b.stack_size + b.headroom
    assert 0 <= limit - (b.heap + non_heap) < MiB  # rounded down to whole MiB
    assert b.heap >= limit // 4  # never below the JVM's own default share
    if limit >= 1 * GiB:
        assert b.heap >= limit * 0.70  # the goal the benchmark checks under real limits


def test_below_the_smallest_sized_limit_the_jvm_keeps_its_defaults(tmp_path: Path) -> None:
    assert jvm.budget(128 * MiB) is None
    p = plan(tmp_path, memory=128 * MiB)
    assert not named(p, "MaxHeapSize") and not named(p, "MaxMetaspaceSize")
    assert named(p, "ExitOnOutOfMemoryError")  # the forensics flags do not depend on the size


def test_auto_flags_at_one_gib(tmp_path: Path) -> None:
    p = plan(tmp_path)
    b = jvm.budget(1 * GiB)
    assert b is not None
    assert named(p, "MaxHeapSize") == [f"-Xmx{b.heap // MiB}M"]
    assert named(p, "MaxMetaspaceSize") == [f"-XX:MaxMetaspaceSize={b.metaspace // MiB}M"]
    assert named(p, "ReservedCodeCacheSize") and named(p, "MaxDirectMemorySize")
    log_dir = p.log_dir
    assert named(p, "HeapDumpPath") == [f"-XX:HeapDumpPath={log_dir}/heapdump-20260101T000000000Z.hprof"]
    assert named(p, "ErrorFile") == [f"-XX:ErrorFile={log_dir}/hs_err-20260101T000000000Z-%p.log"]
    gc = named(p, "Xlog:gc")
    assert len(gc) == 1 and f"file={log_dir}/gc.log" in gc[0] and "filecount=5" in gc[0]
    # the unlock precedes the diagnostic flag it unlocks, or the JVM refuses to start
    assert words(p).index("-XX:+UnlockDiagnosticVMOptions") < words(p).index("-XX:+LogVMOutput")


@pytest.mark.parametrize("var", ["JAVA_TOOL_OPTIONS", "JAVA_OPTS", "JDK_JAVA_OPTIONS", "CATALINA_OPTS"])
@pytest.mark.parametrize("user_flag", ["-Xmx300m", "-XX:MaxRAMPercentage=60.0", "-XX:MaxRAM=1g",
                                       "-XX:MaxHeapSize=268435456"])
def test_a_user_heap_flag_wins_and_conflicting_ones_are_not_added(tmp_path: Path, var: str, user_flag: str) -> None:
    p = plan(tmp_path, environ={var: f"-Dfoo=1 {user_flag}"}, command=READS[var])
    heap_names = {"MaxHeapSize", "MaxRAMPercentage", "MaxRAM"}
    ours = [w for w in p.java_tool_options.split() if jvmflags.flag_name(w) in heap_names]
    if var == "JAVA_TOOL_OPTIONS":
        assert ours == [user_flag]  # kept once, as the user wrote it
        assert p.java_tool_options.endswith(f"-Dfoo=1 {user_flag}")
    else:
        assert ours == []  # the user's reaches the JVM from the command line; nothing of ours competes
    skipped = [f for f in p.flags if f.flag.startswith("-Xmx")]
    assert len(skipped) == 1 and skipped[0].skipped_for == f"{user_flag} in {var}"
    assert named(p, "MaxMetaspaceSize")  # the rest of the split still applies


def test_flags_on_the_command_line_win_too(tmp_path: Path) -> None:
    p = plan(tmp_path, command=("sh", "-c", "exec java -XX:+HeapDumpOnOutOfMemoryError -XX:-ExitOnOutOfMemoryError "
                                            "-Xlog:gc:stdout -XX:MaxDirectMemorySize=1g -jar app.jar"))
    for name in ("HeapDumpOnOutOfMemoryError", "ExitOnOutOfMemoryError", "Xlog:gc", "MaxDirectMemorySize"):
        assert named(p, name) == [], name
    assert named(p, "HeapDumpPath") == []  # the dump flag is the user's: so is where it goes


def test_user_flags_are_never_duplicated(tmp_path: Path) -> None:
    env = {"JAVA_TOOL_OPTIONS": "-XX:+ExitOnOutOfMemoryError -XX:ErrorFile=/tmp/e.log -Xss512k"}
    p = plan(tmp_path, environ=env)
    for word in env["JAVA_TOOL_OPTIONS"].split():
        assert words(p).count(word) == 1
        assert len(named(p, jvmflags.flag_name(word) or "")) == 1
    b = jvm.budget(1 * GiB, 512 * 1024)
    assert b is not None and named(p, "MaxHeapSize") == [f"-Xmx{b.heap // MiB}M"]  # stacks of the user's -Xss


def test_crash_on_oom_conflicts_with_exit_on_oom(tmp_path: Path) -> None:
    p = plan(tmp_path, environ={"JAVA_OPTS": "-XX:+CrashOnOutOfMemoryError"}, command=SHELL_JAVA)
    assert named(p, "ExitOnOutOfMemoryError") == []


def test_a_larger_initial_heap_keeps_our_max_out(tmp_path: Path) -> None:
    p = plan(tmp_path, environ={"JAVA_OPTS": "-Xms2g"}, command=SHELL_JAVA)
    assert named(p, "MaxHeapSize") == []  # -Xms above -Xmx would stop the JVM from starting
    assert named(plan(tmp_path, environ={"JAVA_OPTS": "-Xms64m"}, command=SHELL_JAVA), "MaxHeapSize")


@pytest.mark.parametrize("word,name", [
    ("-Xmx1g", "MaxHeapSize"), ("-Xss256k", "ThreadStackSize"), ("-XX:+UseG1GC", "UseG1GC"),
    ("-XX:-ExitOnOutOfMemoryError", "ExitOnOutOfMemoryError"), ("-XX:MaxRAMPercentage=75", "MaxRAMPercentage"),
    ("-Xloggc:/x.log", "Xlog:gc"), ("-verbose:gc", "Xlog:gc"), ("-Xlog:gc*,safepoint:file=x", "Xlog:gc"),
    ("-Xlog:safepoint", "Xlog:safepoint"), ("-jar", None), ("-Dx=1", None), ("app.jar", None)])
def test_flag_names(word: str, name: str | None) -> None:
    assert jvmflags.flag_name(word) == name


def test_no_room_for_a_dump_turns_dumps_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jvm, "free_bytes", lambda path: 100 * MiB)
    p = plan(tmp_path)
    assert named(p, "HeapDumpOnOutOfMemoryError") == [] and p.heap_dump is None
    reasons = [f.reason for f in p.flags if f.flag == "(no heap dump)"]
    assert reasons and "100 MiB free" in reasons[0]
    assert named(p, "ErrorFile")  # small files still go to the log dir


def test_old_dumps_are_pruned_to_the_newest(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs" / "app" / "10.0.0.1"
    log_dir.mkdir(parents=True)
    dumps = []
    for n in range(5):
        path = log_dir / f"heapdump-2025010{n}T000000000Z.hprof"
        path.write_text("x")
        os.utime(path, (1_700_000_000 + n, 1_700_000_000 + n))
        dumps.append(path)
    (log_dir / "notes.hprof.txt").write_text("not a dump")
    p = plan(tmp_path)
    assert sorted(p.prune) == sorted(str(d) for d in dumps[:5 - (jvm.HEAP_DUMPS_KEPT - 1)])
    assert jvm.apply(p) == []
    left = sorted(x.name for x in log_dir.iterdir())
    assert left == sorted([d.name for d in dumps[-(jvm.HEAP_DUMPS_KEPT - 1):]] + ["notes.hprof.txt"])


def test_a_log_dir_jvm_options_cannot_carry_gets_no_file_flags(tmp_path: Path) -> None:
    log_dir = tmp_path / "my logs"  # JAVA_TOOL_OPTIONS splits at the space
    log_dir.mkdir()
    p = jvm.make_plan("auto", limits(GiB), str(log_dir), str(tmp_path), {}, ())
    assert not named(p, "ErrorFile") and not named(p, "Xlog:gc") and not named(p, "HeapDumpPath")
    assert named(p, "ExitOnOutOfMemoryError") and named(p, "MaxHeapSize")


def test_off_changes_nothing(tmp_path: Path) -> None:
    p = plan(tmp_path, mode="off", environ={"JAVA_TOOL_OPTIONS": "-Xmx1g"})
    assert p.flags == () and p.java_tool_options == ""
    assert jvm.environment(p, {"JAVA_TOOL_OPTIONS": "-Xmx1g"}) == {"JAVA_TOOL_OPTIONS": "-Xmx1g"}


def test_describe_shows_every_flag_and_why(tmp_path: Path) -> None:
    p = plan(tmp_path, environ={"JAVA_OPTS": "-Xmx300m"}, command=SHELL_JAVA)
    text = "\n".join(jvm.describe(p))
    assert "memory limit 1024 MiB" in text
    assert "skipped: the user set -Xmx300m in JAVA_OPTS" in text
    for f in p.flags:
        assert f.flag in text
    doc = jvm.as_dict(p)
    assert doc["java_tool_options"] == p.java_tool_options
    assert any(f.get("skipped_for") == "-Xmx300m in JAVA_OPTS" for f in doc["flags"])  # type: ignore[union-attr]


def test_the_budget_table_in_the_docs_is_the_code() -> None:
    doc = (REPO / "docs" / "jvm.md").read_text()
    sizes = {"256 Mi": 256 * MiB, "512 Mi": 512 * MiB, "1 Gi": GiB, "2 Gi": 2 * GiB, "4 Gi": 4 * GiB,
             "8 Gi": 8 * GiB, "16 Gi": 16 * GiB}
    for label, limit in sizes.items():
        b = jvm.budget(limit)
        assert b is not None
        headroom = f"{b.headroom // MiB}" + (f" ({(b.headroom - b.gc) // MiB} + {b.gc // MiB} GC)" if b.gc else "")
        row = (f"| {label} | {b.heap // MiB} MiB ({b.heap * 100 / limit:.1f}%) | {b.metaspace // MiB} | "
               f"{b.code_cache // MiB} | {b.direct // MiB} | {b.threads} × 1 MiB | {headroom} |")
        assert row in doc


# --- an IPv6 {ip} in the log dir --------------------------------------------------------------


def test_an_ipv6_log_dir_keeps_every_file_flag_and_quotes_the_gc_log(tmp_path: Path) -> None:
    """HeapDumpPath, ErrorFile and LogFile take a ':'; -Xlog takes one only in a quoted file name,
    and JAVA_TOOL_OPTIONS keeps double quotes only inside single ones."""
    p = plan(tmp_path, ip="fd00::5")
    log_dir = p.log_dir
    assert log_dir.endswith("/fd00::5")
    assert p.heap_dump == f"{log_dir}/heapdump-20260101T000000000Z.hprof"
    assert named(p, "HeapDumpPath") == [f"-XX:HeapDumpPath={p.heap_dump}"]
    assert named(p, "ErrorFile") == [f"-XX:ErrorFile={log_dir}/hs_err-20260101T000000000Z-%p.log"]
    assert named(p, "LogFile") == [f"-XX:LogFile={log_dir}/jvm-20260101T000000000Z-%p.log"]
    assert named(p, "Xlog:gc") == [f"-Xlog:gc*:file='\"{log_dir}/gc.log\"':time,uptime:filecount=5,filesize=10M"]
    assert not [f for f in p.flags if f.flag == "(no file flags)"]


# --- a user flag counts only where the JVM reads it -------------------------------------------


@pytest.mark.parametrize("var", ["JAVA_OPTS", "CATALINA_OPTS"])
def test_a_variable_the_command_never_reads_is_not_the_users_flag(tmp_path: Path, var: str) -> None:
    """Exec-form `java -jar app.jar`: JAVA_OPTS never reaches the JVM, so our -Xmx is set (the JVM
    would otherwise end at its 25%), and the plan says why the variable was passed over."""
    p = plan(tmp_path, environ={var: "-XX:MaxRAMPercentage=75"})
    b = jvm.budget(1 * GiB)
    assert b is not None and named(p, "MaxHeapSize") == [f"-Xmx{b.heap // MiB}M"]
    notes = [f.reason for f in p.flags if f.flag == f"({var} not read)"]
    assert len(notes) == 1 and "-XX:MaxRAMPercentage=75" in notes[0]


@pytest.mark.parametrize("command", [
    ("sh", "-c", "exec java $JAVA_OPTS -jar app.jar"),
    ("/bin/bash", "-c", "exec java ${JAVA_OPTS} -cp app.jar Main"),
])
def test_a_shell_command_line_that_expands_java_opts_reads_it(tmp_path: Path, command: tuple[str, ...]) -> None:
    p = plan(tmp_path, environ={"JAVA_OPTS": "-XX:MaxRAMPercentage=75"}, command=command)
    assert named(p, "MaxHeapSize") == []
    assert [f.skipped_for for f in p.flags if f.flag.startswith("-Xmx")] == ["-XX:MaxRAMPercentage=75 in JAVA_OPTS"]


def test_catalina_sh_reads_catalina_opts_and_java_opts(tmp_path: Path) -> None:
    env = {"CATALINA_OPTS": "-Xmx300m", "JAVA_OPTS": "-XX:+CrashOnOutOfMemoryError"}
    p = plan(tmp_path, environ=env, command=("/usr/share/tomcat10/bin/catalina.sh", "run"))
    assert named(p, "MaxHeapSize") == [] and named(p, "ExitOnOutOfMemoryError") == []


def test_a_launcher_script_that_mentions_java_opts_reads_it(tmp_path: Path) -> None:
    """A start script (Gradle's, sbt's) passes JAVA_OPTS on; one that never mentions it does not."""
    reads, ignores = tmp_path / "app-start", tmp_path / "other-start"
    reads.write_text('#!/bin/sh\nexec java $DEFAULT_JVM_OPTS $JAVA_OPTS -cp "$APP_HOME/lib/*" Main "$@"\n')
    ignores.write_text("#!/bin/sh\nexec java -cp /app/lib/app.jar Main\n")
    env = {"JAVA_OPTS": "-Xmx300m", "PATH": f"{tmp_path}:/usr/bin"}
    assert named(plan(tmp_path, environ=env, command=(str(reads),)), "MaxHeapSize") == []
    assert named(plan(tmp_path, environ=env, command=("app-start", "--port", "8080")), "MaxHeapSize") == []  # on PATH
    assert named(plan(tmp_path, environ=env, command=("sh", "-c", f"exec {reads}")), "MaxHeapSize") == []
    assert named(plan(tmp_path, environ=env, command=(str(ignores),)), "MaxHeapSize") != []


@pytest.mark.parametrize("where", ["argv", "shell", "JDK_JAVA_OPTIONS"])
def test_an_argfile_on_the_command_line_is_read(tmp_path: Path, where: str) -> None:
    argfile = tmp_path / "jvm.args"
    argfile.write_text("# the service's JVM options\n-Xmx1g\n  -XX:+UseG1GC\n-Dgreeting=\"a b\"\n")
    command: tuple[str, ...] = ("java", f"@{argfile}", "-jar", "app.jar")
    environ: dict[str, str] = {}
    if where == "shell":
        command = ("sh", "-c", f"exec java $JAVA_OPTS '@{argfile}' -jar app.jar")
    elif where == "JDK_JAVA_OPTIONS":
        command, environ = ("java", "-jar", "app.jar"), {"JDK_JAVA_OPTIONS": f"@{argfile}"}
    p = plan(tmp_path, command=command, environ=environ)
    assert named(p, "MaxHeapSize") == []
    assert [f.skipped_for for f in p.flags if f.flag.startswith("-Xmx")] == [f"-Xmx1g in @{argfile}"]


def test_argfiles_that_cannot_be_read_are_passed_over(tmp_path: Path) -> None:
    """A missing file, a directory, a FIFO (reading it would block PID 1) and a word that is no
    argfile (an app's own @argument after the main class) change nothing."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    later = tmp_path / "app.args"
    later.write_text("-Xmx1g\n")
    command = ("java", f"@{tmp_path}/missing", f"@{tmp_path}", f"@{fifo}", "-jar", "app.jar", f"@{later}")
    p = plan(tmp_path, command=command)
    assert named(p, "MaxHeapSize")


# --- the headroom and HotSpot's own sizing rules ----------------------------------------------

# GC native memory HotSpot commits with G1 and a full heap (NMT summary, "GC committed", OpenJDK
# 17.0.15; the 16 GiB point measured on 17 too): heap MiB -> GC MiB
G1_GC_NATIVE = {1024: 72, 2048: 113, 4096: 193, 8192: 345, 16384: 621}


def g1_gc_native(heap_mib: float) -> float:
    points = sorted(G1_GC_NATIVE.items())
    for (h0, g0), (h1, g1) in zip(points, points[1:]):
        if heap_mib <= h1:
            return g0 + (g1 - g0) * (heap_mib - h0) / (h1 - h0)
    return points[-1][1] * heap_mib / points[-1][0]


@pytest.mark.parametrize("limit", [2 * GiB, 4 * GiB, 8 * GiB, 16 * GiB, 64 * GiB])
def test_the_headroom_grows_with_the_heap_as_g1_does(limit: int) -> None:
    """From 1792 MiB HotSpot picks G1, whose native memory grows with the heap: the headroom must
    hold it, or a full heap ends in a kernel kill instead of a recorded OutOfMemoryError."""
    b = jvm.budget(limit)
    assert b is not None
    assert b.gc >= b.heap * 0.04 - MiB  # the GC's share of the headroom: 4% of the heap
    assert b.headroom >= g1_gc_native(b.heap / MiB) * MiB
    assert b.heap >= limit * 0.70


def test_serial_gc_keeps_the_small_headroom(tmp_path: Path) -> None:
    """Below 1792 MiB (or with -XX:+UseSerialGC) the GC's native memory is a few MiB."""
    b = jvm.budget(1 * GiB)
    assert b is not None and b.gc == 0
    small = plan(tmp_path, memory=4 * GiB, environ={"JAVA_TOOL_OPTIONS": "-XX:+UseSerialGC"})
    serial = jvm.budget(4 * GiB, gc_share=0.0)
    assert serial is not None and named(small, "MaxHeapSize") == [f"-Xmx{serial.heap // MiB}M"]
    g1 = plan(tmp_path, memory=1 * GiB, environ={"JAVA_TOOL_OPTIONS": "-XX:+UseG1GC"})
    with_g1 = jvm.budget(1 * GiB, gc_share=jvm.GC_SHARE)
    assert with_g1 is not None and named(g1, "MaxHeapSize") == [f"-Xmx{with_g1.heap // MiB}M"]


@pytest.mark.parametrize("percent,memory,counts", [
    ("50", 1 * GiB, False), ("50.0", 256 * MiB, False), ("10", 1 * GiB, True), ("25", 256 * MiB, True),
    ("25", 512 * MiB, False)])
def test_min_ram_percentage_counts_only_where_hotspot_reads_it(tmp_path: Path, percent: str, memory: int,
                                                                counts: bool) -> None:
    """HotSpot takes MinRAMPercentage only when that share of memory is below its built-in
    MaxHeapSize (about 125 MiB); above it the flag does nothing, and must not keep our -Xmx out."""
    p = plan(tmp_path, memory=memory, environ={"JAVA_TOOL_OPTIONS": f"-XX:MinRAMPercentage={percent}"})
    assert (named(p, "MaxHeapSize") == []) is counts
    assert jvm.min_ram_percentage_applies(memory, float(percent)) is counts
