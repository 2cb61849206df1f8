from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from tests.support.agent import Agent
from tests.support.apptree import app_tree
from tests.support.paths import BOOTSTRAP


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return app_tree(tmp_path)


@pytest.fixture
def start(env: dict[str, str]) -> Iterator[Callable[..., Agent]]:
    """start(app_args, pid1=True, **extra_env) -> a running Agent; all are killed at teardown."""
    agents: list[Agent] = []

    def _start(command: list[str], pid1: bool = True, **extra: str) -> Agent:
        agent = Agent([BOOTSTRAP, "run", "--", *command], {**env, **extra}, pid1)
        agents.append(agent)
        return agent

    yield _start
    for agent in agents:
        agent.kill()
