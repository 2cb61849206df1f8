"""Import budgets, measured in a fresh interpreter: what PID 1, the checker and the node tool load."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.agent import modules_after


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """An app home with conf.d/{common,dev} and an empty settings file."""
    home = tmp_path / "app"
    for env in ("common", "dev"):
        (home / "conf.d" / env).mkdir(parents=True)
    config = tmp_path / "bootstrap.yaml"
    config.write_text("")
    return {"APP_NAME": "orders", "APP_ENV": "dev", "APP_HOME": str(home), "BOOTSTRAP_CONFIG": str(config)}


def test_checker_imports_no_metrics_code() -> None:
    """The checker's memory is in the budget: prometheus_client is the HTTP helper's alone."""
    assert modules_after("import bootstrap.helpers.readiness",
                         ("bootstrap.helpers.metrics", "bootstrap.helpers.logdir_stats", "prometheus_client")) == []


def test_pid1_path_never_imports_dataclasses_or_typing() -> None:
    """The reason record.py exists: PID 1's start-up budget (bench/run.py)."""
    assert modules_after("import bootstrap.cli, bootstrap.settings, bootstrap.pid1.plan, bootstrap.pid1.supervisor",
                         ("dataclasses", "typing", "yaml", "psutil", "requests", "watchdog", "prometheus_client")) == []


def test_run_path_loads_the_lock_but_never_the_pruner() -> None:
    assert modules_after("import bootstrap.cli, bootstrap.pid1.loglock, bootstrap.pid1.plan, bootstrap.pid1.supervisor",
                         ("bootstrap.node.prune", "bootstrap.node.cli", "bootstrap.node.logroot", "bootstrap.node.scan",
                          "bootstrap.node.remove", "bootstrap.node.compress", "bootstrap.node.metrics",
                          "dataclasses", "typing", "gzip", "shutil",
                          "prometheus_client")) == []


def test_no_yaml_import_without_settings_file(environ: dict[str, str], tmp_path: Path) -> None:
    """PID 1 imports only the standard library: with no settings file, yaml stays unimported."""
    del environ["BOOTSTRAP_CONFIG"]
    code = ("import sys, json\nfrom bootstrap.settings import resolve\n"
            f"resolve.DEFAULT_CONFIG = {str(tmp_path / 'absent.yaml')!r}\n"
            "resolve.load(json.loads(sys.argv[1]))\n"
            "assert 'yaml' not in sys.modules, 'yaml was imported'\n")
    subprocess.run([sys.executable, "-c", code, json.dumps(environ)], check=True,
                   env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


@pytest.mark.parametrize(("text", "yaml_imported"), [
    ('{"app_name": "billing", "ready": {"tcp": 8080}, "start": ["java", "-jar", "b.jar"]}\n', False),
    ("app_name: billing\nready: {tcp: 8080}\nstart: [java, -jar, b.jar]\n", True),
    ("{app_name: billing, ready: {tcp: 8080}, start: [java, -jar, b.jar]}\n", True),  # flow YAML, not JSON
])
def test_json_settings_file_skips_the_yaml_parser(environ: dict[str, str], tmp_path: Path, text: str,
                                                    yaml_imported: bool) -> None:
    """dockerfile-gen writes bootstrap.yaml as JSON (which is YAML): PID 1 reads it without yaml."""
    Path(environ["BOOTSTRAP_CONFIG"]).write_text(text)
    del environ["APP_NAME"]  # from the file, then
    code = ("import sys, json\nfrom bootstrap.settings import resolve\n"
            "s = resolve.load(json.loads(sys.argv[1]))\n"
            "assert (s.app_name, s.ready.tcp, s.start) == ('billing', ('127.0.0.1', 8080), ('java', '-jar', 'b.jar'))\n"
            "print('yaml' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(environ)], check=True, capture_output=True,
                         text=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}).stdout
    assert out.strip() == str(yaml_imported)
