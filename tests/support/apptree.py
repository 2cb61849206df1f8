"""An app's files on disk for the agent: APP_HOME with conf.d, a log root and a settings file."""
from __future__ import annotations

import os
from pathlib import Path


def write_file(path: Path, text: str) -> Path:
    """Writes text to path, creating its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def app_tree(root: Path, envs: tuple[str, ...] = ("dev", "qa"), *, app_name: str = "demo", app_env: str = "qa",
             pod_ip: str | None = "10.0.0.7", settings_text: str = "") -> dict[str, str]:
    """An APP_HOME under root with conf.d/common/logback.xml and conf.d/<env>/app.properties for
    each env, an empty log root and a settings file; returns the environment `bootstrap` needs
    (no POD_IP when pod_ip is None: the agent then finds the IP itself)."""
    home = root / "app"
    for env in envs:
        write_file(home / "conf.d" / env / "app.properties", f"env={env}\n")
    write_file(home / "conf.d" / "common" / "logback.xml", "<configuration/>\n")
    (root / "logs").mkdir()
    write_file(root / "bootstrap.yaml", settings_text)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "APP_NAME": app_name,
        "APP_ENV": app_env,
        "APP_HOME": str(home),
        "BOOTSTRAP_LOG_ROOT": str(root / "logs"),
        "BOOTSTRAP_RUN_DIR": str(root / "run"),
        "BOOTSTRAP_CONFIG": str(root / "bootstrap.yaml"),
    }
    if pod_ip is not None:
        env["POD_IP"] = pod_ip
    return env
