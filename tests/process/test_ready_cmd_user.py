"""BOOTSTRAP_READY_CMD runs as BOOTSTRAP_USER, like the app: a readiness command must not run as
root in a container whose app runs unprivileged."""
from __future__ import annotations

import pwd
from typing import Callable

import pytest

from tests.support.agent import Agent
from tests.support.waiting import wait_until

Start = Callable[..., Agent]

pytestmark = pytest.mark.process


def test_ready_cmd_runs_as_the_app_user(start: Start) -> None:
    """Catches an agent that runs the readiness command as root (its uid, gid, groups and HOME):
    the command below passes only as nobody, so the app would never be ready."""
    nobody = pwd.getpwnam("nobody")
    expect = f"{nobody.pw_uid}:{nobody.pw_gid}:{nobody.pw_gid}:{nobody.pw_dir}"
    check = f'test "$(id -u):$(id -g):$(id -G):$HOME" = "{expect}"'
    agent = start(["/bin/sleep", "600"], BOOTSTRAP_USER="nobody", BOOTSTRAP_READY_CMD=f"/bin/sh -c '{check}'")
    wait_until(lambda: agent.status().get("state") == "ready", timeout=30)
    assert agent.status()["detail"].startswith("checks passed: cmd /bin/sh")
