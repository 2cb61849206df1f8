"""`jvm: auto`: JVM flags sized to the container, handed to the app in JAVA_TOOL_OPTIONS.

The memory limit is split the way Paketo's memory calculator splits it (heap = limit minus
metaspace, code cache, direct memory, thread stacks and headroom), but with budgets that scale
with the limit and were checked by the benchmark (bench/jvm_memory.py: a real JVM under real
cgroup limits, never killed by the kernel). Paketo's fixed 240 MiB code cache and 250 × 1 MiB of
stacks leave no heap at all below 600 MiB.

Forensics flags make an OutOfMemoryError end the JVM (a clean restart instead of a half-broken
app), write a heap dump when the log root has room for one, and put hs_err files, the GC log and
the VM's own output (thread dumps, the "Terminating due to java.lang.OutOfMemoryError" line)
into the log directory, where `bootstrap.pid1.forensics` finds them at exit.

A flag the user set wins and is never repeated, but only where the JVM reads it: JAVA_TOOL_OPTIONS,
JDK_JAVA_OPTIONS, the command line and the @argfiles on it, and JAVA_OPTS or CATALINA_OPTS only
when the command expands them or runs a start script that reads them. Flags are compared by name,
and -Xmx, -XX:MaxRAMPercentage, -XX:MaxRAM and -XX:MaxRAMFraction count as one (so does
-XX:MinRAMPercentage where HotSpot reads it: small memory). Standard library only: PID 1 runs this.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping

from bootstrap.frozen import frozen
from bootstrap.pid1.cgroups import Limits
from bootstrap.pid1.jvmflags import user_flags, value
from bootstrap.sizes import parse_jvm_size

MiB = 1 << 20
# Budgets per memory limit; bench/jvm_memory.py checks them under real limits (docs/benchmarks.md).
MIN_SIZED_LIMIT = 256 * MiB  # below this the JVM's own small-memory ergonomics are kept
DEFAULT_STACK = 1 * MiB  # HotSpot's -Xss on 64-bit Linux
THREADS_PER_MIB = 1 / 16  # assumed threads: one per 16 MiB of limit, 16 to 200
MIN_THREADS, MAX_THREADS = 16, 200
# (share of the limit, floor, cap). Metaspace is capped so that a class leak is an OutOfMemoryError
# rather than a kernel kill; at least 64 MiB, which a small Spring Boot app needs.
METASPACE = (1 / 12, 64 * MiB, 256 * MiB)
CODE_CACHE = (1 / 20, 24 * MiB, 240 * MiB)  # HotSpot reserves 240 MiB; a service uses 20-60 MiB of it
DIRECT = (1 / 32, 8 * MiB, 128 * MiB)
# GC and JIT native memory, malloc arenas, libjvm and the CDS archive, and the agent itself
HEADROOM = (0.03, 32 * MiB, 256 * MiB)
# On top of it, G1's (or Parallel's) own native memory, which grows with the heap: NMT on JDK 17 with
# a full heap commits 4.7% of it at 4 GiB, 4.2% at 8 GiB, 3.8% at 16 GiB (docs/jvm.md). Serial GC
# (HotSpot's choice below G1_FROM) needs a few MiB, which HEADROOM holds.
GC_SHARE = 0.04
G1_FROM = 1792 * MiB  # HotSpot picks G1 from 2 GiB less 256 MiB of memory (with 2 CPUs): a "server class machine"
COLLECTORS = ("UseSerialGC", "UseG1GC", "UseParallelGC", "UseZGC", "UseShenandoahGC")
# HotSpot's built-in MaxHeapSize (ScaleForWordSize(96M)): MinRAMPercentage sizes the heap only when
# its share of the memory is below this, and the default heap is never smaller
HOTSPOT_MAX_HEAP = 96 * MiB * 13 // 10
HEAP_DUMP_MARGIN = 64 * MiB  # free space needed beyond the max heap before a dump is allowed
HEAP_DUMPS_KEPT = 3  # newest heap dumps kept in the log dir, counting the one this run may write
VM_LOGS_KEPT = 10  # newest jvm-*.log and hs_err-*.log files kept
GC_LOG_FILES, GC_LOG_SIZE = 5, "10M"
HEAP_GROUP = frozenset({"MaxHeapSize", "MaxRAMPercentage", "MaxRAMFraction", "MaxRAM", "MinRAMPercentage"})
# JAVA_TOOL_OPTIONS splits words at whitespace and takes quotes away: a log dir with these gets no file flags
UNSAFE_PATH = frozenset(" \t\n\r'\"\\")
# -Xlog splits its option at ':' (and its parts at ',' and '='): a file name with them must be quoted
XLOG_QUOTED = frozenset(":,=")


@frozen
class JvmFlag:
    flag: str
    reason: str
    skipped_for: str = ""  # the user's flag and where it was set, when that one wins


@frozen
class Budget:
    limit: int
    heap: int
    metaspace: int
    code_cache: int
    direct: int
    stack_size: int
    threads: int
    headroom: int
    gc: int  # of the headroom, the GC's native memory: GC_SHARE of the heap with G1, 0 with Serial


@frozen
class JvmPlan:
    mode: str  # auto | off
    limits: Limits
    budget: Budget | None
    flags: tuple[JvmFlag, ...]
    java_tool_options: str  # the value the app gets; "" leaves the environment alone
    log_dir: str
    stamp: str  # names this run's files: heapdump-STAMP.hprof, hs_err-STAMP-*.log, jvm-STAMP-*.log
    heap_dump: str | None  # where the dump goes; None when dumps are off
    prune: tuple[str, ...]  # old dumps and VM logs removed at start


def _clamp(limit: int, rule: tuple[float, int, int]) -> int:
    share, floor, cap = rule
    return max(floor, min(cap, int(limit * share))) // MiB * MiB


def budget(limit: int, stack_size: int = DEFAULT_STACK, gc_share: float | None = None) -> Budget | None:
    """The split of a memory limit; None below MIN_SIZED_LIMIT. `gc_share` defaults to HotSpot's
    own choice of collector for the limit: G1 from G1_FROM, Serial below."""
    if limit < MIN_SIZED_LIMIT:
        return None
    if gc_share is None:
        gc_share = GC_SHARE if limit >= G1_FROM else 0.0
    threads = max(MIN_THREADS, min(MAX_THREADS, int(limit / MiB * THREADS_PER_MIB)))
    metaspace, code_cache = _clamp(limit, METASPACE), _clamp(limit, CODE_CACHE)
    direct, headroom = _clamp(limit, DIRECT), _clamp(limit, HEADROOM)
    rest = limit - metaspace - code_cache - direct - threads * stack_size - headroom
    heap = int(rest / (1 + gc_share)) // MiB * MiB  # rest = heap + gc_share * heap
    gc = (rest - heap) // MiB * MiB
    if heap < limit // 4:  # a huge -Xss: never go below the JVM's own default share
        return None
    return Budget(limit, heap, metaspace, code_cache, direct, stack_size, threads, headroom + gc, gc)


def min_ram_percentage_applies(memory: int, percent: float) -> bool:
    """Whether HotSpot sizes the heap by -XX:MinRAMPercentage: only when that share of the memory
    is below its built-in MaxHeapSize (about 250 MiB of memory at the default 50%)."""
    return memory * percent / 100 < HOTSPOT_MAX_HEAP


# --- the plan --------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n // MiB}M"


def stamp_now(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1000):03d}Z"


def _old_files(log_dir: str, prefix: str, suffix: str, keep: int) -> list[str]:
    """Files PREFIX*SUFFIX in the log dir beyond the newest `keep`, oldest first."""
    found = []
    try:
        for entry in os.scandir(log_dir):
            if entry.name.startswith(prefix) and entry.name.endswith(suffix) and entry.is_file(follow_symlinks=False):
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.name, entry.path))
    except OSError:  # unreadable, or a file vanished meanwhile: prune nothing this time
        return []
    found.sort()
    return [path for _, _, path in found[:max(0, len(found) - keep)]]


def free_bytes(path: str) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def host_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class Flags:
    """The flags chosen so far. `add` skips a flag the user already set (under its own name or one
    in `also`), recording where the user's one came from."""

    def __init__(self, given: dict[str, tuple[str, str]]) -> None:
        self.given = given
        self.chosen: list[JvmFlag] = []

    def add(self, name: str, flag: str, reason: str, also: frozenset[str] = frozenset()) -> bool:
        for other in sorted({name} | also):
            if other in self.given:
                word, where = self.given[other]
                self.chosen.append(JvmFlag(flag, reason, f"{word} in {where}"))
                return False
        self.chosen.append(JvmFlag(flag, reason))
        return True

    def note(self, flag: str, reason: str, skipped_for: str = "") -> None:
        """A flag (or a "(no … flags)" remark) added whatever the user set."""
        self.chosen.append(JvmFlag(flag, reason, skipped_for))

    def size(self, name: str) -> int | None:
        """The user's value of a size flag, in bytes."""
        return parse_jvm_size(value(self.given[name][0])) if name in self.given else None

    def percent(self, name: str) -> float | None:
        """The user's value of a percentage flag."""
        try:
            return float(value(self.given[name][0])) if name in self.given else None
        except ValueError:
            return None

    def enabled(self, name: str) -> bool:
        """Whether the user switched a boolean flag on (-XX:+Name)."""
        return self.given.get(name, ("",))[0].startswith("-XX:+")


def make_plan(mode: str, limits: Limits, log_dir: str, log_root: str, environ: Mapping[str, str],
              command: tuple[str, ...], stamp: str | None = None) -> JvmPlan:
    stamp = stamp or stamp_now()
    if mode == "off":
        return JvmPlan(mode, limits, None, (), "", log_dir, stamp, None, ())
    given, unread = user_flags(environ, command)
    flags = Flags(given)
    for var in unread:
        flags.note(f"({var} not read)", f"the command neither expands ${var} nor runs a script that reads it: "
                                        f"{environ[var].strip()[:200]} does not reach the JVM")
    split, max_heap = _memory_flags(flags, limits)
    if max_heap is None:
        max_heap = _jvm_max_heap(flags, limits.memory)
    flags.add("ExitOnOutOfMemoryError", "-XX:+ExitOnOutOfMemoryError",
              "a JVM that threw OutOfMemoryError is half-broken: exit (code 3) so the pod restarts cleanly",
              frozenset({"CrashOnOutOfMemoryError"}))
    heap_dump, prune = _file_flags(flags, log_dir, log_root, max_heap, stamp)
    chosen = " ".join(f.flag for f in flags.chosen if not f.skipped_for and f.flag.startswith("-"))
    existing = environ.get("JAVA_TOOL_OPTIONS", "").strip()
    java_tool_options = " ".join(p for p in (chosen, existing) if p)  # the user's come last: they win
    return JvmPlan(mode, limits, split, tuple(flags.chosen), java_tool_options, log_dir, stamp, heap_dump, prune)


def _memory_flags(flags: Flags, limits: Limits) -> tuple[Budget | None, int | None]:
    """The memory split of the limit as flags; the max heap when ours is the one that counts."""
    stack = flags.size("ThreadStackSize")
    if stack is not None and flags.given["ThreadStackSize"][0].startswith("-XX:"):
        stack *= 1024  # -XX:ThreadStackSize is in KiB, -Xss in bytes
    limit = limits.memory
    split = budget(limit, stack or DEFAULT_STACK, _gc_share(flags, limit)) if limit else None
    if split is None or limit is None:
        if limit is None:
            flags.note("(no heap flags)", f"no memory limit: {limits.memory_source}; the JVM sizes itself")
        else:
            flags.note("(no heap flags)", f"limit {limit // MiB} MiB is below {MIN_SIZED_LIMIT // MiB} MiB: "
                                          "the JVM's small-memory defaults are kept")
        return split, None
    max_heap: int | None = None
    of = f"of the {limit // MiB} MiB limit"
    heap_reason = (f"{split.heap * 100 // limit}% {of}: the limit minus metaspace, code cache, direct "
                   f"memory, {split.threads} thread stacks of {split.stack_size // 1024} KiB and "
                   f"{split.headroom // MiB} MiB headroom")
    if split.gc:
        heap_reason += f" ({split.gc // MiB} MiB of it for the GC's native memory: {GC_SHARE:.0%} of the heap)"
    heap_group = HEAP_GROUP
    min_percent = flags.percent("MinRAMPercentage")
    if min_percent is not None and not min_ram_percentage_applies(limit, min_percent):
        heap_group -= {"MinRAMPercentage"}
        word, where = flags.given["MinRAMPercentage"]
        flags.note("(MinRAMPercentage not counted)", f"HotSpot ignores {word} in {where} at this limit: it sizes "
                                                     f"the heap only when the share is below {HOTSPOT_MAX_HEAP // MiB} MiB")
    initial = flags.given.get("InitialHeapSize")
    initial_size = flags.size("InitialHeapSize")
    if initial and initial_size and initial_size > split.heap:
        flags.note(f"-Xmx{_size(split.heap)}", heap_reason, f"{initial[0]} in {initial[1]} is larger")
    elif flags.add("MaxHeapSize", f"-Xmx{_size(split.heap)}", heap_reason, heap_group):
        max_heap = split.heap
    flags.add("MaxMetaspaceSize", f"-XX:MaxMetaspaceSize={_size(split.metaspace)}",
              f"{split.metaspace * 100 // limit}% {of}: a class leak ends as an OutOfMemoryError, not a kernel kill")
    flags.add("ReservedCodeCacheSize", f"-XX:ReservedCodeCacheSize={_size(split.code_cache)}",
              f"{split.code_cache * 100 // limit}% {of} for JIT code, instead of HotSpot's 240 MiB")
    flags.add("MaxDirectMemorySize", f"-XX:MaxDirectMemorySize={_size(split.direct)}",
              f"{split.direct * 100 // limit}% {of} for NIO direct buffers, which may otherwise grow as large "
              "as the heap")
    return split, max_heap


def _gc_share(flags: Flags, limit: int | None) -> float:
    """GC_SHARE unless the JVM runs Serial GC: the user's -XX:+UseSerialGC, or HotSpot's own choice
    below G1_FROM."""
    chosen = [name for name in COLLECTORS if flags.enabled(name)]
    if chosen:
        return 0.0 if chosen == ["UseSerialGC"] else GC_SHARE
    return GC_SHARE if limit and limit >= G1_FROM else 0.0


def _jvm_max_heap(flags: Flags, limit: int | None) -> int:
    """The heap the JVM will have without our -Xmx, by HotSpot's rule: the user's, or a share of
    the memory (-XX:MaxRAM, the limit or the host's): MinRAMPercentage (50) of small memory,
    otherwise MaxRAMPercentage (25) but at least HOTSPOT_MAX_HEAP."""
    user = flags.size("MaxHeapSize")
    if user is not None:
        return user
    memory = flags.size("MaxRAM") or limit or host_memory()
    min_percent = flags.percent("MinRAMPercentage") or 50.0
    if min_ram_percentage_applies(memory, min_percent):
        return int(memory * min_percent / 100)
    return max(int(memory * (flags.percent("MaxRAMPercentage") or 25.0) / 100), HOTSPOT_MAX_HEAP)


def _file_flags(flags: Flags, log_dir: str, log_root: str, max_heap: int,
                stamp: str) -> tuple[str | None, tuple[str, ...]]:
    """Heap dump, crash report, GC log and VM output in the log dir; the heap dump path and the old
    files to prune."""
    if set(log_dir) & UNSAFE_PATH:
        flags.note("(no file flags)", f"the log dir {log_dir!r} has a space, quote or backslash that "
                                      "JAVA_TOOL_OPTIONS cannot carry")
        return None, ()
    heap_dump: str | None = None
    prune: list[str] = []
    free = free_bytes(log_root)
    needed = max_heap + HEAP_DUMP_MARGIN
    dump_path = os.path.join(log_dir, f"heapdump-{stamp}.hprof")
    if free is not None and free >= needed:
        if flags.add("HeapDumpOnOutOfMemoryError", "-XX:+HeapDumpOnOutOfMemoryError",
                     f"the log root has {free // MiB} MiB free, room for a {max_heap // MiB} MiB heap + "
                     f"{HEAP_DUMP_MARGIN // MiB} MiB"):
            if flags.add("HeapDumpPath", f"-XX:HeapDumpPath={dump_path}",
                         f"in the log dir; the newest {HEAP_DUMPS_KEPT} dumps are kept"):
                heap_dump = dump_path
                prune += _old_files(log_dir, "heapdump-", ".hprof", HEAP_DUMPS_KEPT - 1)
    else:
        room = "unknown" if free is None else f"{free // MiB} MiB"
        flags.note("(no heap dump)", f"the log root has {room} free, less than the "
                                     f"{needed // MiB} MiB a dump of a {max_heap // MiB} MiB heap needs")
    flags.add("ErrorFile", f"-XX:ErrorFile={log_dir}/hs_err-{stamp}-%p.log",
              "a JVM crash report lands in the log dir, named for this start")
    gc_log, quoted = f"{log_dir}/gc.log", ""
    if set(log_dir) & XLOG_QUOTED:  # an IPv6 {ip}: -Xlog takes a ':' in a quoted name only
        gc_log, quoted = f"'\"{gc_log}\"'", "; the name quoted for its ':', the single quotes carry the double ones"
    flags.add("Xlog:gc", f"-Xlog:gc*:file={gc_log}:time,uptime:filecount={GC_LOG_FILES},filesize={GC_LOG_SIZE}",
              f"GC log in the log dir, rotated: {GC_LOG_FILES} files of {GC_LOG_SIZE}{quoted}")
    if "LogVMOutput" not in flags.given and "LogFile" not in flags.given:
        # the unlock must come before the flag it unlocks, so a user's later one cannot serve
        flags.note("-XX:+UnlockDiagnosticVMOptions", "must precede -XX:+LogVMOutput")
    if flags.add("LogVMOutput", "-XX:+LogVMOutput",
                 "the VM's own output (thread dumps, the OutOfMemoryError it exits on) is copied to a file",
                 frozenset({"LogFile"})):
        flags.note(f"-XX:LogFile={log_dir}/jvm-{stamp}-%p.log",
                   f"read at exit for the cause; the newest {VM_LOGS_KEPT} are kept")
        prune += _old_files(log_dir, "jvm-", ".log", VM_LOGS_KEPT - 1)
    prune += _old_files(log_dir, "hs_err-", ".log", VM_LOGS_KEPT - 1)
    return heap_dump, tuple(prune)


def environment(plan: JvmPlan | None, environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    if plan is not None and plan.java_tool_options:
        env["JAVA_TOOL_OPTIONS"] = plan.java_tool_options
    return env


def apply(plan: JvmPlan | None) -> list[str]:
    """Removes old dumps and VM logs; returns what could not be removed (logged, never fatal)."""
    failed = []
    for path in plan.prune if plan else ():
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror}")
    return failed


def describe(plan: JvmPlan) -> list[str]:
    """`bootstrap plan` lines: the limits, then each flag and why."""
    limits = plan.limits
    memory = f"memory limit {limits.memory // MiB} MiB ({limits.memory_source})" if limits.memory else limits.memory_source
    cpus = f"{limits.cpus:g} CPUs ({limits.cpu_source})" if limits.cpus else limits.cpu_source
    lines = [f"jvm {plan.mode}: {memory}; {cpus}"]
    for f in plan.flags:
        lines.append(f"  {f.flag}  ({'skipped: the user set ' + f.skipped_for if f.skipped_for else f.reason})")
    lines += [f"  prune {p}  (older than the newest kept)" for p in plan.prune]
    if plan.java_tool_options:
        lines.append(f"  JAVA_TOOL_OPTIONS={plan.java_tool_options}")
    return lines


def as_dict(plan: JvmPlan) -> dict[str, object]:
    from bootstrap.frozen import asdict

    doc = asdict(plan)
    doc["flags"] = [{k: v for k, v in f.items() if v != ""} for f in doc["flags"]]
    return doc
