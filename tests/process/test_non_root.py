"""The agent started as a non-root user, as the chart's default runs it: every setting of
BOOTSTRAP_USER, nothing chowned, no user switched; each privilege error names its real cause; and
two apps of two uids on one log root set up as a node is (root:10000, mode 3753) cannot read,
write, rename or unlock each other's logs, while each works with its own.

The app tree mirrors a generated image: APP_HOME and its files are root's, the run dir and the
config link directory are the app's, and APP_HOME/logs is a link into the run dir, where the agent
places the link to the log directory (BOOTSTRAP_LOG_LINK)."""
from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent import Agent
from tests.support.apptree import app_tree
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_root
from tests.support.waiting import wait_until

pytestmark = pytest.mark.process

UID_A, UID_B = 20001, 20002
READERS = 10000
ROOT_MODE = 0o3753


def as_user(uid: int, *argv: str) -> list[str]:
    """argv run as uid:uid with no supplementary group and no capability (setpriv drops them)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", *argv]


@pytest.fixture
def node() -> Iterator[Path]:
    """A directory every uid can traverse (pytest's tmp_path is root's 0700), with a log root set up
    as helm/node-logs sets up a node's."""
    require_root()
    top = Path(tempfile.mkdtemp(prefix="k8sjb-nonroot-"))
    top.chmod(0o755)
    logs = top / "logs"
    logs.mkdir()
    os.chown(logs, 0, READERS)
    logs.chmod(ROOT_MODE)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def image_tree(node: Path, name: str, uid: int, settings_text: str = "") -> dict[str, str]:
    root = node / name
    root.mkdir()
    env = app_tree(root, app_name=name, settings_text=settings_text)
    shutil.rmtree(root / "logs")  # the node's log root is shared
    env["BOOTSTRAP_LOG_ROOT"] = str(node / "logs")
    for path in (root / "app" / "conf", root / "run"):
        path.mkdir(mode=0o750)
        os.chown(path, uid, uid)
    env["BOOTSTRAP_LOG_LINK"] = str(root / "run" / "links" / "logs")
    (root / "app" / "logs").symlink_to(root / "run" / "links" / "logs")
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink() and path.stat().st_uid == 0:
            path.chmod(path.stat().st_mode & ~0o022)  # the app's files are root's, not writable by it
    return env


def start_as(uid: int, env: dict[str, str], command: list[str], **extra: str) -> Agent:
    return Agent(as_user(uid, BOOTSTRAP, "run", "--", *command), {**env, **extra}, pid1=True)


def run_as(uid: int, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(as_user(uid, BOOTSTRAP, *args), env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("user", [None, f"{UID_A}:{UID_A}", "", "settings-file-only"])
def test_non_root_agent_with_every_setting_of_user(node: Path, user: str | None) -> None:
    """Unset, the agent's own ids, and empty (clearing the file's `user: nobody`): the app runs as
    the agent does, the log directory is 0750 with the readers' group inherited, nothing chowned."""
    settings = 'user: "nobody"\n' if user in ("", "settings-file-only") else ""
    env = image_tree(node, "orders", UID_A, settings)
    extra = {} if user in (None, "settings-file-only") else {"BOOTSTRAP_USER": user}
    if user == "settings-file-only":
        proc = run_as(UID_A, {**env, **extra}, "run", "--", "true")
        assert proc.returncode == 78, proc.stderr
        (line,) = proc.stderr.splitlines()
        assert "BOOTSTRAP_USER='nobody'" in line and f"runs as uid {UID_A}" in line and "BOOTSTRAP_USER=" in line
        return
    plan = json.loads(run_as(UID_A, {**env, **extra}, "plan", "--json").stdout)
    assert plan["user"] is None and not [a for a in plan["actions"] if a["kind"] == "chown"]
    agent = start_as(UID_A, env, ["/bin/sh", "-c", "id -u > \"$APP_HOME/logs/whoami\"; exec sleep 600"], **extra)
    try:
        wait_until(lambda: agent.status().get("state") == "ready", timeout=30)
        log_dir = node / "logs" / "orders" / "10.0.0.7"
        wait_until(lambda: (log_dir / "whoami").exists(), timeout=10)
        assert (log_dir / "whoami").read_text().strip() == str(UID_A)
        for directory in (node / "logs" / "orders", log_dir):
            st = directory.stat()
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode) & 0o777) == (UID_A, READERS, 0o750), directory
        assert os.readlink(node / "orders" / "app" / "conf" / "app.properties").endswith("conf.d/qa/app.properties")
        assert agent.status()["pid"] > 1
    finally:
        agent.kill()


def test_a_switch_a_non_root_agent_cannot_make_is_one_line(node: Path) -> None:
    env = image_tree(node, "orders", UID_A)
    proc = run_as(UID_A, env | {"BOOTSTRAP_USER": "nobody"}, "run", "--", "true")
    assert proc.returncode == 78
    (line,) = proc.stderr.splitlines()
    assert line.startswith("bootstrap: error: BOOTSTRAP_USER='nobody' asks to run the app as uid 65534")
    assert f"the agent runs as uid {UID_A}" in line and "not root" in line and "CAP_SETUID" in line
    assert not (node / "logs" / "orders").exists(), "nothing is changed before the error"


def test_root_without_setuid_names_the_missing_capabilities(node: Path) -> None:
    env = image_tree(node, "orders", UID_A)
    proc = subprocess.run(["setpriv", "--bounding-set=-setuid,-setgid", BOOTSTRAP, "run", "--", "true"],
                          env=env | {"BOOTSTRAP_USER": "nobody"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78
    (line,) = proc.stderr.splitlines()
    assert "runs as root without CAP_SETUID and CAP_SETGID" in line and "agent.rootCapabilities" in line


PRIVILEGE_ERRORS = r"""
import os, sys
from bootstrap.errors import BootstrapError
from bootstrap.pid1 import actions, child, users
case = sys.argv[1]
try:
    if case == "setgroups":
        child.spawn(("true",), {}, set(), set(), users.User(0, 0, (0,), "root", "/"))
    elif case == "chown":
        actions.apply([actions.Action("chown", sys.argv[2], uid=1, gid=1)])
    elif case == "mkdir":
        actions.apply([actions.Action("mkdir", sys.argv[2] + "/x")])
except BootstrapError as exc:
    print(exc)
"""


@pytest.mark.parametrize("case, expected", [
    ("setgroups", "cannot start the app as root (uid 0, gid 0): setgroups() failed: Operation not permitted; "
                  "setgroups() needs root with CAP_SETGID and CAP_SETUID"),
    ("chown", "Operation not permitted; changing the owner needs root with CAP_CHOWN (the agent runs as uid 20001)"),
    ("mkdir", "Permission denied; check that"),
])
def test_each_privilege_error_names_its_real_cause(node: Path, case: str, expected: str) -> None:
    """EPERM from setgroups is the user switch, never 'cannot execute'; EPERM from chown is the
    missing privilege, never 'writable by root'; a directory the agent cannot write names its uid."""
    (node / "ro").mkdir(mode=0o755)
    proc = subprocess.run(as_user(UID_A, sys.executable, "-c", PRIVILEGE_ERRORS, case, str(node / "ro")),
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert expected in proc.stdout, proc.stdout + proc.stderr
    assert "cannot execute" not in proc.stdout
    if case == "mkdir":
        assert f"writable by uid {UID_A}" in proc.stdout and "by root" not in proc.stdout


def test_a_log_root_not_set_up_names_the_uid_and_the_node_setup(node: Path) -> None:
    env = image_tree(node, "orders", UID_A)
    (node / "logs").chmod(0o755)
    proc = run_as(UID_A, env, "run", "--", "true")
    assert proc.returncode == 78
    (line,) = proc.stderr.splitlines()
    assert f"not writable by uid {UID_A}" in line and "mode 3753" in line and "node-logs" in line


def test_a_directory_another_app_made_is_refused(node: Path) -> None:
    """App B made LOG_ROOT/orders first (it can guess the name): orders' agent refuses to write its
    logs where B could read them."""
    env = image_tree(node, "orders", UID_A)
    squat = node / "logs" / "orders"
    subprocess.run(as_user(UID_B, "mkdir", "-m", "0777", str(squat)), check=True)
    proc = run_as(UID_A, env, "run", "--", "true")
    assert proc.returncode == 78
    (line,) = proc.stderr.splitlines()
    assert f"{squat} belongs to uid {UID_B}" in line and "another app made it" in line


def attempt(uid: int, op: str, path: Path) -> int:
    """errno of one file operation as uid (0: it worked)."""
    code = ("import os, sys, errno\nop, p = sys.argv[1], sys.argv[2]\ntry:\n"
            "    if op == 'read': os.close(os.open(p, os.O_RDONLY))\n"
            "    elif op == 'list': os.listdir(p)\n"
            "    elif op == 'write': os.close(os.open(p, os.O_WRONLY | os.O_APPEND))\n"
            "    elif op == 'create': os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o644))\n"
            "    elif op == 'rename': os.rename(p, p + '.moved'); os.rename(p + '.moved', p)\n"
            "    elif op == 'unlink': os.unlink(p)\n"
            "except OSError as exc:\n    print(exc.errno); sys.exit(0)\nprint(0)\n")
    out = subprocess.run(as_user(uid, sys.executable, "-c", code, op, str(path)), capture_output=True, text=True,
                         timeout=30, cwd="/")
    return int(out.stdout.strip() or -1)


def test_two_apps_on_one_log_root_are_apart(node: Path) -> None:
    env_a, env_b = image_tree(node, "orders", UID_A), image_tree(node, "billing", UID_B)
    command = ["/bin/sh", "-c", "echo line >> \"$APP_HOME/logs/app.log\"; exec sleep 600"]
    a = start_as(UID_A, env_a, command)
    b = start_as(UID_B, env_b, command, POD_IP="10.0.0.8")
    try:
        for agent in (a, b):
            wait_until(lambda agent=agent: agent.status().get("state") == "ready", timeout=30)
        dir_a, dir_b = node / "logs" / "orders" / "10.0.0.7", node / "logs" / "billing" / "10.0.0.8"
        wait_until(lambda: (dir_a / "app.log").exists() and (dir_b / "app.log").exists(), timeout=10)
        for uid, own, other in ((UID_A, dir_a, dir_b), (UID_B, dir_b, dir_a)):
            for op, target in (("read", other / "app.log"), ("write", other / "app.log"), ("list", other),
                               ("rename", other / "app.log"), ("unlink", other / ".bootstrap.lock"),
                               ("read", other / ".bootstrap.lock"), ("create", other / "x.log"),
                               ("rename", other.parent), ("list", node / "logs")):
                assert attempt(uid, op, target) in (errno.EACCES, errno.EPERM), (uid, op, target)
            for op, target in (("read", own / "app.log"), ("write", own / "app.log"), ("list", own),
                               ("rename", own / "app.log"), ("create", own / "x.log")):
                assert attempt(uid, op, target) == 0, (uid, op, target)
        # The node's readers (the readers' group) read both; the pruner's lock is no app's to take.
        for path in (dir_a / "app.log", dir_b / "app.log"):
            read = subprocess.run(["setpriv", "--reuid=101", "--regid=101", f"--groups={READERS}", "cat", str(path)],
                                  capture_output=True, text=True, timeout=30)
            assert read.stdout == "line\n", read.stderr
        assert a.proc.poll() is None and b.proc.poll() is None
    finally:
        a.kill()
        b.kill()
