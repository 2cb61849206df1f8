"""Chart tests need the Helm engine (helm-python-sdk), kubernetes-validate and yamllint from
deps/pip-chart.txt; scripts/install-deps.sh installs them. Locally they skip without them; in CI
`require` fails instead."""
from __future__ import annotations

import importlib.util

import pytest

from tests.support.prereq import require

REQUIRED = ("helm_python", "kubernetes_validate", "yamllint", "jsonschema")


@pytest.fixture(autouse=True)
def _chart_tools() -> None:
    for module in REQUIRED:
        require(importlib.util.find_spec(module) is not None,
                f"python package {module} is missing (deps/pip-chart.txt; run scripts/install-deps.sh)")
