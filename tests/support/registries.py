"""Real docker-registry processes on 127.0.0.1, each with its own config, port and storage directory.

Used by the replication tests and by the replication benchmark (bench/replication.py). A registry can
be killed and started again on the same port and storage, as a replica that goes down and comes back.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.leaks import FIXTURE_OWNED

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
    """tls: (certificate, key) files to serve HTTPS; htpasswd: a bcrypt htpasswd file, with login its user
    and password, to require basic auth."""

    def __init__(self, name: str, root: Path, port: int | None = None, tls: tuple[Path, Path] | None = None,
                 htpasswd: Path | None = None, login: tuple[str, str] | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = root / name / "data"
        self.config = root / name / "registry.yml"
        self.log = root / name / "registry.log"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.scheme = "https" if tls else "http"
        self.context = ssl.create_default_context(cafile=str(tls[0])) if tls else None
        self.headers = {"Authorization": "Basic " + base64.b64encode(":".join(login).encode()).decode()} if login else {}
        tls_config = f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else ""
        auth_config = f"auth:\n  htpasswd:\n    realm: {name}\n    path: {htpasswd}\n" if htpasswd else ""
        self.config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n{tls_config}"
            f"{auth_config}"
            "log:\n  level: warn\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with open(self.log, "ab") as log:
            # A registry belongs to its fixture, not to the test that (re)starts it.
            self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)], stdout=log, stderr=log,
                                         env={**os.environ, **FIXTURE_OWNED})
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
            with self._open("/v2/", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _open(self, path: str, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 10) -> Any:
        request = urllib.request.Request(f"{self.scheme}://{self.host}{path}", method=method,
                                         headers={**self.headers, **(headers or {})})
        return urllib.request.urlopen(request, timeout=timeout, context=self.context)

    # -- the HTTP API, read independently of the code under test ------------------------------
    def get(self, path: str) -> Any:
        with self._open(path) as response:
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
        try:
            with self._open(f"/v2/{repo}/manifests/{reference}", "HEAD", {"Accept": ACCEPT}) as response:
                return str(response.headers["Docker-Content-Digest"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def delete(self, repo: str, digest: str) -> None:
        with self._open(f"/v2/{repo}/manifests/{digest}", "DELETE") as response:
            assert response.status == 202, response.status

    def blob_files(self) -> int:
        return sum(1 for _ in (self.storage / "docker/registry/v2/blobs").rglob("data"))

    def manifest(self, repo: str, reference: str) -> tuple[bytes, str]:
        """A manifest's bytes and media type."""
        with self._open(f"/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT}) as response:
            return bytes(response.read()), str(response.headers["Content-Type"])

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        """PUTs a manifest (e.g. an index of manifests already in repo); returns its digest."""
        request = urllib.request.Request(f"{self.scheme}://{self.host}/v2/{repo}/manifests/{reference}", data=body,
                                         method="PUT", headers={**self.headers, "Content-Type": media_type})
        with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
            assert response.status == 201, response.status
            return str(response.headers["Docker-Content-Digest"])

    def untag(self, repo: str, tag: str) -> None:
        """Removes a tag and keeps its manifest, as registries with tag deletes do (distribution 3, Harbor).
        distribution 2.8 deletes only manifests, so the tag goes from the storage directly."""
        shutil.rmtree(self.storage / "docker/registry/v2/repositories" / repo / "_manifests/tags" / tag)
