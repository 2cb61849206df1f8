"""The suite's hooks: tiers by folder, the leak check, and the podman session fixtures. Helpers
that tests import live in tests/support/."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leaks import no_leftover_processes  # noqa: F401 - autouse: no test leaves a process running

# The podman engine, root image and tree build: session fixtures shared by the container and pod tiers.
pytest_plugins = ("tests.podman_engine",)

# Each folder of tests/ is a tier, and every test in it gets the tier's marker, so `-m` selects by
# tier (`-m "not container and not pod"`). A test file outside a tier folder is an error.
TIERS = ("unit", "gen", "lint", "chart", "process", "fault", "container", "pod", "jvm")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in a tier folder, one of {', '.join(TIERS)}")
        item.add_marker(getattr(pytest.mark, tier))
