"""A real Prometheus for the metrics process tests."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.net import free_port, http_code, http_get
from tests.support.prereq import require_tool
from tests.support.waiting import wait_until


class Prometheus:
    """Debian's prometheus on 127.0.0.1, scraping one target every second, with its own storage."""

    def __init__(self, workdir: Path, target_port: int, labels: dict[str, str],
                 more_jobs: tuple[tuple[str, int, dict[str, str]], ...] = ()) -> None:
        binary = require_tool("prometheus")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": job, "static_configs": [
                {"targets": [f"127.0.0.1:{port}"], "labels": job_labels}]}
                for job, port, job_labels in (("bootstrap", target_port, labels), *more_jobs)]}))
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: self.proc.poll() is not None or self._ready(), timeout=60, interval=0.1)
            assert self.proc.poll() is None, (workdir / "prometheus.log").read_text()[-2000:]
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        return http_code(self.port, "/-/ready") == 200

    def api(self, path: str, **params: str) -> Any:
        url = f"/api/v1/{path}?{urllib.parse.urlencode(params)}"
        answer = http_get(self.port, url, timeout=10)
        assert answer is not None, f"prometheus did not answer {url}"
        doc = json.loads(answer[1])
        assert doc["status"] == "success", (url, doc)
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr, time=f"{time.time():.3f}")
        return list(data["result"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self.log.close()
