"""Real Java: Debian's tomcat10 on openjdk-17 under `bootstrap run` as PID 1 of a PID namespace."""
from __future__ import annotations

import glob
import shutil
import signal
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from tests.support.agent import Agent, records
from tests.support.net import free_port
from tests.support.prereq import require
from tests.support.waiting import wait_until

CATALINA_HOME = "/usr/share/tomcat10"

SERVER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="{port}" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
"""

# Non-rotating file names, so the readiness log path is fixed.
LOGGING = """handlers = 1catalina.org.apache.juli.AsyncFileHandler, java.util.logging.ConsoleHandler
.handlers = 1catalina.org.apache.juli.AsyncFileHandler, java.util.logging.ConsoleHandler
1catalina.org.apache.juli.AsyncFileHandler.level = FINE
1catalina.org.apache.juli.AsyncFileHandler.directory = ${catalina.base}/logs
1catalina.org.apache.juli.AsyncFileHandler.prefix = catalina
1catalina.org.apache.juli.AsyncFileHandler.suffix = .log
1catalina.org.apache.juli.AsyncFileHandler.rotatable = false
java.util.logging.ConsoleHandler.level = FINE
"""


@pytest.fixture
def tomcat_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    require(Path(CATALINA_HOME, "bin", "catalina.sh").exists(), "tomcat10 is not installed")
    jvms = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*"))
    require(bool(jvms), "openjdk-17-jre-headless is not installed")
    home = Path(env["APP_HOME"])
    base = home / "tomcat"
    for sub in ("webapps/ROOT", "work", "temp"):
        (base / sub).mkdir(parents=True)
    (base / "webapps" / "ROOT" / "index.html").write_text("hello from qa\n")
    (base / "logs").mkdir()  # the image ships a logs dir: it must be moved aside, not lost
    (base / "logs" / "shipped.txt").write_text("from the image\n")
    common = home / "conf.d" / "common"
    shutil.copy("/etc/tomcat10/web.xml", common / "web.xml")
    (common / "logging.properties").write_text(LOGGING)
    qa_port, dev_port = free_port(), free_port()
    (home / "conf.d" / "qa" / "server.xml").write_text(SERVER_XML.format(port=qa_port))
    (home / "conf.d" / "dev" / "server.xml").write_text(SERVER_XML.format(port=dev_port))
    Path(env["BOOTSTRAP_CONFIG"]).write_text(
        "log_links:\n"
        f"  - {{path: {base / 'logs'}, subdir: tomcat}}\n"
        "ready:\n"
        f"  log: tomcat/logs/catalina.log\n"
        "  pattern: 'Server startup in'\n"
        f"  http: http://127.0.0.1:{qa_port}/\n"
        "  timeout: 120\n"
    )
    return {**env, "BOOTSTRAP_CONF_TARGET": "tomcat/conf", "CATALINA_HOME": CATALINA_HOME,
            "CATALINA_BASE": str(base), "JAVA_HOME": jvms[0], "QA_PORT": str(qa_port),
            "BOOTSTRAP_STOP_TIMEOUT": "30", "BOOTSTRAP_EXIT_REMAP": "143=0"}


def test_tomcat_starts_ready_and_stops_gracefully(start: Callable[..., Agent], tomcat_env: dict[str, str]) -> None:
    agent = start([f"{CATALINA_HOME}/bin/catalina.sh", "run"], **tomcat_env)
    base = Path(tomcat_env["CATALINA_BASE"])
    wait_until(lambda: (agent.run_dir / "ready").exists() or agent.proc.poll() is not None, timeout=120)
    assert agent.status()["state"] == "ready", (agent.status(), agent.err[-20:])

    port = tomcat_env["QA_PORT"]
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == b"hello from qa\n"
    assert (base / "conf" / "server.xml").resolve() == Path(tomcat_env["APP_HOME"], "conf.d/qa/server.xml")
    log_dir = Path(tomcat_env["BOOTSTRAP_LOG_ROOT"]) / "demo" / "10.0.0.7"
    assert (base / "logs").resolve() == log_dir / "tomcat"
    assert "Server startup in" in (log_dir / "tomcat" / "catalina.log").read_text()
    assert (base / "logs.orig" / "shipped.txt").read_text() == "from the image\n"

    sent = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.wait(timeout=60) == 0  # the JVM exits 143 on TERM; EXIT_REMAP=143=0
    assert time.monotonic() - sent < 30, "Tomcat was killed at the timeout instead of stopping"
    catalina_log = (log_dir / "tomcat" / "catalina.log").read_text()
    assert "Stopping service [Catalina]" in catalina_log
    exit_record = records(tomcat_env["BOOTSTRAP_LOG_ROOT"])[-1]
    assert (exit_record["cause"], exit_record["raw_exit_code"], exit_record["exit_code"]) == ("stopped", 143, 0)
