"""Real docker-registry processes on 127.0.0.1, each with its own config, port and storage directory.

Used by the replication tests and by the replication benchmark (bench/replication.py). A registry can
be killed and started again on the same port and storage, as a replica that goes down and comes back.
"""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryProcess:
    def __init__(self, name: str, root: Path, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = root / name / "data"
        self.config = root / name / "registry.yml"
        self.log = root / name / "registry.log"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
            "log:\n  level: warn\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"registry {self.name} exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"registry {self.name} did not answer on {self.host} within {timeout}s")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    # -- the HTTP API, read independently of the code under test ------------------------------
    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{self.host}{path}", timeout=10) as response:
            return json.load(response)

    def digests(self) -> dict[str, str]:
        """Every repo:tag with the digest the registry serves for it."""
        found = {}
        for repo in self.get("/v2/_catalog?n=1000")["repositories"]:
            for tag in self.get(f"/v2/{repo}/tags/list")["tags"] or []:
                digest = self.digest(repo, tag)
                if digest:
                    found[f"{repo}:{tag}"] = digest
        return found

    def digest(self, repo: str, reference: str) -> str | None:
        request = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{reference}", method="HEAD",
                                         headers={"Accept": ACCEPT})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return str(response.headers["Docker-Content-Digest"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def delete(self, repo: str, digest: str) -> None:
        request = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{digest}", method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202, response.status

    def blob_files(self) -> int:
        return sum(1 for _ in (self.storage / "docker/registry/v2/blobs").rglob("data"))
