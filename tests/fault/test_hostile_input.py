"""Hostile input through the installed console script: one `bootstrap: error:` line, exit 78, in
bounded CPU time and memory (RLIMIT_CPU and the child's peak RSS), never the whole bad value."""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.apptree import app_tree
from tests.support.paths import BOOTSTRAP

pytestmark = pytest.mark.fault

CPU_SECONDS = 2  # the kernel kills a run that needs more
MAX_CPU_SECONDS = 1.0  # the target: CPU time, so other load on the machine does not count
MAX_RSS_MB = 50


@dataclass
class Result:
    code: int
    stderr: str
    max_rss_mb: float
    cpu_seconds: float


# A small launcher: the peak RSS wait4 reports includes the memory of the process that forked the
# child (exec keeps the old high-water mark), so bootstrap is started from this ~10 MB interpreter, not
# from pytest. It applies RLIMIT_CPU, passes stderr through and prints "code cpu_seconds max_rss_kb".
LAUNCHER = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_CPU, (int(sys.argv[1]), int(sys.argv[1])))
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
"""


def run_bounded(env: dict[str, str], *args: str) -> Result:
    """`bootstrap run -- /bin/true` under RLIMIT_CPU; its exit code, CPU time and peak RSS."""
    argv = [BOOTSTRAP, *(args or ("run", "--", "/bin/true"))]
    proc = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", LAUNCHER, str(CPU_SECONDS), *argv], env=env,
                          capture_output=True, timeout=60, check=True)
    code, cpu, rss_kb = proc.stdout.split()
    return Result(int(code), proc.stderr.decode(errors="replace"), int(rss_kb) / 1024, float(cpu))


def one_error_line(result: Result, *words: str) -> str:
    lines = result.stderr.splitlines()
    assert result.code == 78, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("bootstrap: error: "), result.stderr[-2000:]
    assert len(lines[0]) < 1200, f"an error line of {len(lines[0])} characters"
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert result.max_rss_mb < MAX_RSS_MB, f"peak RSS {result.max_rss_mb:.0f} MB"
    assert result.cpu_seconds < MAX_CPU_SECONDS, f"{result.cpu_seconds:.2f} s of CPU"
    return lines[0]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return app_tree(tmp_path)


def laughs(levels: int) -> str:
    """A "billion laughs" file whose anchors all sit under known keys (ready.cmd), so only the value
    of app_name, 9**(levels-1) strings once expanded, can stop it."""
    items = ['&lol0 "lol"'] + [f"&lol{n} [" + ", ".join([f"*lol{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "ready:\n  cmd:\n" + "".join(f"    - {item}\n" for item in items) + f"app_name: *lol{levels - 1}\n"


SETTINGS_FILES = {
    # name: (content, words the error line must hold)
    "too large": (b"app_name: demo\n" + b"# padding\n" * 100_000, ["larger than 64 KiB"]),
    "deep JSON": (b'{"ready": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", ["nests deeper than 16 levels"]),
    "deep YAML": (b"ready:\n  tcp: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", ["nests deeper than 16 levels"]),
    "billion laughs": (laughs(10).encode(), ["YAML alias", "line 4"]),
    "long integer, JSON": (b'{"http_port": ' + b"9" * 5000 + b"}", ["integer of 5000 digits"]),
    "long integer, YAML": (b"http_port: " + b"9" * 5000 + b"\n", ["integer of 5000 digits", "line 1"]),
    "invalid UTF-8": (b"app_name: demo\nimage: caf\xe9\n", ["not valid UTF-8", "0xe9", "line 2"]),
    "UTF-16": ("app_name: demo\n".encode("utf-16"), ["UTF-16"]),
    "UTF-16 without BOM": ("app_name: demo\n".encode("utf-16-le"), ["UTF-16"]),
}


@pytest.mark.parametrize("name", list(SETTINGS_FILES))
def test_hostile_settings_file(env: dict[str, str], tmp_path: Path, name: str) -> None:
    """Catches an agent that reads the settings file unbounded: a RecursionError traceback on deep
    nesting, gigabytes for a billion-laughs file, a ValueError traceback (or seconds of CPU) on a
    5,000-digit integer, a UnicodeDecodeError on a UTF-16 file, or an error that echoes the value."""
    content, words = SETTINGS_FILES[name]
    path = tmp_path / "bootstrap.yaml"
    path.write_bytes(content)
    line = one_error_line(run_bounded(env), str(path), *words)
    assert "lol" not in line and "99999" not in line


def test_control_characters_in_a_value_cannot_forge_a_line(env: dict[str, str]) -> None:
    """Catches an agent that prints values raw: a newline in APP_ENV forges a second error line,
    ESC and BEL reach the terminal."""
    result = run_bounded({**env, "APP_ENV": "qa\nbootstrap: error: forged\x1b[2J\x07"})
    one_error_line(result, "APP_ENV", "\\n", "\\x1b[2J", "\\x07")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_a_huge_value_is_cut(env: dict[str, str]) -> None:
    """Catches an agent that echoes a 120 KiB APP_ENV in full (a 246 KB error line)."""
    line = one_error_line(run_bounded({**env, "APP_ENV": "x" * 120 * 1024}), "APP_ENV", "characters cut")
    assert line.endswith("/")  # the tail of the message, which says how to fix it, is kept


@pytest.mark.parametrize("pod_ip", ["1:2:3", ":::", "1::2::3", "10.0.0.07", "10.0.0.256", "fe80::1%eth0", "١٠.0.0.1"])
def test_pod_ip_must_be_an_address(env: dict[str, str], pod_ip: str) -> None:
    """Catches an agent that accepts any run of hex digits and colons (1:2:3, :::) as POD_IP and
    names a log directory after it."""
    one_error_line(run_bounded({**env, "POD_IP": pod_ip}), "POD_IP")


def test_conf_source_symlink_loop(env: dict[str, str], tmp_path: Path) -> None:
    """Catches an agent that dies with an ELOOP traceback on a conf source that links to itself."""
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    one_error_line(run_bounded({**env, "BOOTSTRAP_CONF_SOURCE": str(loop)}), str(loop), "symbolic links")


def test_a_255_byte_config_file_name_links(env: dict[str, str]) -> None:
    """Catches an agent whose temporary link name (name + suffix) exceeds NAME_MAX, so a legal
    255-byte file name cannot be linked."""
    name = "a" * 251 + ".xml"
    (Path(env["APP_HOME"]) / "conf.d" / "qa" / name).write_text("<x/>\n")
    result = run_bounded(env)
    assert result.code == 0, result.stderr
    link = Path(env["APP_HOME"]) / "conf" / name
    assert link.is_symlink() and link.read_text() == "<x/>\n"
    assert [p.name for p in link.parent.iterdir() if p.name.startswith(".")] == []


def test_a_name_too_long_says_so(env: dict[str, str], tmp_path: Path) -> None:
    """Catches an agent whose error for an over-long link name says "check that it is writable"."""
    settings = tmp_path / "bootstrap.yaml"
    (Path(env["APP_HOME"]) / "a.properties").write_text("a\n")
    settings.write_text('{"links": [{"source": "a.properties", "target": "%s"}]}' % ("b" * 300))
    one_error_line(run_bounded(env), "File name too long", "longer than the filesystem allows")


def test_bounds_hold_for_a_good_file_too(env: dict[str, str], tmp_path: Path) -> None:
    """The bounds are not so tight that a real settings file fails: a 60 KiB YAML file with every
    key, an anchor used nowhere, 16 levels of nothing deeper than allowed."""
    text = "app_name: demo\nstop_timeout: 30\nready:\n  tcp: 8080\n  timeout: 12\n" + "# comment line\n" * 4000
    (tmp_path / "bootstrap.yaml").write_text(text)
    started = time.monotonic()
    result = run_bounded(env)
    assert result.code == 0, result.stderr
    assert time.monotonic() - started < 30  # the CPU limit is the real bound; this only ends a hang


def test_a_255_byte_file_in_the_way_is_moved_aside(env: dict[str, str]) -> None:
    """Catches an agent that moves a file aside to NAME.orig without room for the suffix: a
    255-byte name in the way then fails with ENAMETOOLONG instead of being kept."""
    name = "b" * 251 + ".xml"
    (Path(env["APP_HOME"]) / "conf.d" / "qa" / name).write_text("<new/>\n")
    (Path(env["APP_HOME"]) / "conf").mkdir()
    (Path(env["APP_HOME"]) / "conf" / name).write_text("<shipped/>\n")
    result = run_bounded(env)
    assert result.code == 0, result.stderr
    conf = Path(env["APP_HOME"]) / "conf"
    assert (conf / name).is_symlink() and (conf / name).read_text() == "<new/>\n"
    aside = [p for p in conf.iterdir() if p.name.endswith(".orig")]
    assert [p.read_text() for p in aside] == ["<shipped/>\n"] and len(aside[0].name) == 255
