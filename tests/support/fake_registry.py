"""A Registry v2 API in memory on 127.0.0.1, with the knobs a real registry lacks: a catalog that
leaves repositories out, tag lists that answer 403, tags removed without their manifest, and
hand-written `Link` headers. It records every request with the Authorization header it carried."""
from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

IMAGE = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
# Full path with query -> (entries, the Link header's value or None): a catalog served as the test says.
Pages = Callable[[str], "tuple[list[str], str | None]"]


@dataclass
class Repo:
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest -> (body, media type)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str


class FakeRegistry:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.catalog: list[str] | None = None  # what /v2/_catalog lists; None: every repository
        self.forbidden: set[str] = set()  # repositories whose tag list answers 403
        self.pages: Pages | None = None
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- content -------------------------------------------------------------------------------
    def put(self, repo: str, tag: str | None, document: dict[str, Any], media_type: str) -> str:
        body = json.dumps(document, sort_keys=True).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        entry = self.repos.setdefault(repo, Repo())
        entry.manifests[digest] = (body, media_type)
        if tag is not None:
            entry.tags[tag] = digest
        return digest

    def image(self, repo: str, tag: str | None, content: str) -> str:
        """An image manifest (its blobs are never asked for: the replicas already hold every image)."""
        config = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                  "digest": "sha256:" + hashlib.sha256(content.encode()).hexdigest()}
        return self.put(repo, tag, {"schemaVersion": 2, "mediaType": IMAGE, "config": config, "layers": []}, IMAGE)

    def index(self, repo: str, tag: str, children: dict[str, str]) -> str:
        """An index of children (platform architecture -> digest of a manifest in the repository)."""
        manifests = [{"mediaType": IMAGE, "digest": digest, "size": len(self.repos[repo].manifests[digest][0]),
                      "platform": {"architecture": arch, "os": "linux"}} for arch, digest in children.items()]
        return self.put(repo, tag, {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}, INDEX)

    def copy_to(self, other: FakeRegistry) -> None:
        """What a complete replication leaves: the other registry holds the same tags and manifests."""
        for name, repo in self.repos.items():
            target = other.repos.setdefault(name, Repo())
            target.manifests.update(repo.manifests)
            target.tags.update(repo.tags)

    def untag(self, repo: str, tag: str) -> None:
        """Removes a tag, keeping its manifest (distribution 3, Harbor)."""
        del self.repos[repo].tags[tag]

    def delete(self, repo: str, digest: str) -> None:
        """DELETE by digest, as distribution does it: the manifest and every tag on it."""
        entry = self.repos[repo]
        entry.manifests.pop(digest, None)
        entry.tags = {t: d for t, d in entry.tags.items() if d != digest}

    def tags_of(self) -> dict[str, str]:
        """Every repo:tag with its digest, and every manifest as repo@digest."""
        found = {f"{name}:{tag}": digest for name, repo in self.repos.items() for tag, digest in repo.tags.items()}
        found.update({f"{name}@{digest}": digest for name, repo in self.repos.items() for digest in repo.manifests})
        return found

    def deletes(self) -> list[str]:
        return [seen.path for seen in self.requests if seen.method == "DELETE"]


def _handler(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_DELETE(self) -> None:
            with registry.lock:
                registry.requests.append(Seen("DELETE", self.path, self.headers.get("Authorization", "")))
                repo, kind, reference = _split(self.path)
                if kind != "manifests" or repo not in registry.repos or reference not in registry.repos[repo].manifests:
                    return self._answer(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')
                registry.delete(repo, reference)
            self._answer(202, b"")

        def _serve(self, body: bool) -> None:
            with registry.lock:
                registry.requests.append(Seen(self.command, self.path, self.headers.get("Authorization", "")))
                status, content, headers = self._route()
            self._answer(status, content if body else b"", headers, length=len(content))

        def _route(self) -> tuple[int, bytes, dict[str, str]]:
            parts = urllib.parse.urlsplit(self.path)
            if parts.path == "/v2/":
                return 200, b"{}", {}
            if parts.path == "/v2/_catalog":
                if registry.pages is not None:
                    entries, link = registry.pages(self.path)
                    return 200, json.dumps({"repositories": entries}).encode(), {"Link": link} if link else {}
                return _listing("repositories", sorted(registry.repos) if registry.catalog is None else registry.catalog,
                                parts.query, "/v2/_catalog")
            repo, kind, reference = _split(parts.path)
            if repo not in registry.repos:
                return 404, b'{"errors": [{"code": "NAME_UNKNOWN"}]}', {}
            entry = registry.repos[repo]
            if kind == "tags" and reference == "list":
                if repo in registry.forbidden:
                    return 403, b'{"errors": [{"code": "DENIED"}]}', {}
                return _listing("tags", sorted(entry.tags), parts.query, f"/v2/{repo}/tags/list")
            digest = entry.tags.get(reference, reference)
            if kind != "manifests" or digest not in entry.manifests:
                return 404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}', {}
            content, media_type = entry.manifests[digest]
            return 200, content, {"Content-Type": media_type, "Docker-Content-Digest": digest}

        def _answer(self, status: int, content: bytes, headers: dict[str, str] | None = None, length: int | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content) if length is None else length))
            self.end_headers()
            if content:
                self.wfile.write(content)

    return Handler


def _split(path: str) -> tuple[str, str, str]:
    """/v2/<repo>/<kind>/<reference> -> (repo, kind, reference)."""
    inner = urllib.parse.urlsplit(path).path.removeprefix("/v2/")
    for kind in ("manifests", "tags"):
        repo, marker, reference = inner.rpartition(f"/{kind}/")
        if marker:
            return repo, kind, reference
    return "", "", ""


def _listing(key: str, entries: list[str], query: str, path: str) -> tuple[int, bytes, dict[str, str]]:
    """One page as distribution pages: `n` entries after `last`, and a Link to the next page."""
    params = urllib.parse.parse_qs(query)
    size = int(params.get("n", ["1000"])[0])
    last = params.get("last", [""])[0]
    rest = [e for e in entries if e > last]
    page = rest[:size]
    headers = {}
    if len(rest) > size:
        headers["Link"] = f'<{path}?n={size}&last={urllib.parse.quote(page[-1], safe="")}>; rel="next"'
    return 200, json.dumps({key: page}).encode(), headers
