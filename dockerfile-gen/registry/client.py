"""A client for the Docker Registry HTTP API v2 (the distribution spec): what replication reads and deletes.

It lists repositories and tags, reads a tag's manifest digest (`Docker-Content-Digest`) with every
manifest type in Accept (Docker v2 and OCI, manifests and indexes), checks blobs, points a tag at a
manifest the registry holds, names an index's child manifests, and deletes manifests by digest.
Connections and authentication are dockerfile_gen.registry.session's job; blob copying is skopeo's
(dockerfile_gen.registry.replicate), never this module's.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dockerfile_gen.registry.endpoint import Endpoint
from dockerfile_gen.registry.session import RegistryError, Session, expect

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = frozenset(MANIFEST_TYPES[:2])
ACCEPT = ", ".join(MANIFEST_TYPES)
PAGE = 1000  # catalog and tag list page size; the Link header carries the rest
MAX_MANIFEST_BYTES = 4 << 20  # the distribution spec's own manifest limit


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


class Client:
    """The registry API operations replication needs, over one Session with the registry."""

    def __init__(self, endpoint: Endpoint, page_size: int = PAGE) -> None:
        self.endpoint = endpoint
        self.page_size = page_size
        self.session = Session(endpoint)

    def close(self) -> None:
        self.session.close()

    def ping(self) -> None:
        response = self.session.request("GET", "/v2/", "")
        if response.status_code != 200:
            raise RegistryError(f"{self.endpoint.label} is not a registry (GET /v2/ answered {response.status_code})")

    def repositories(self) -> Iterator[str]:
        yield from self.session.pages(f"/v2/_catalog?n={self.page_size}", "registry:catalog:*", "repositories")

    def tags(self, repo: str) -> list[str]:
        return list(self.session.pages(f"/v2/{repo}/tags/list?n={self.page_size}", _pull(repo), "tags", missing_ok=True))

    def head_manifest(self, repo: str, reference: str) -> ManifestHead | None:
        """The digest a tag (or digest) resolves to, or None when the registry does not have it."""
        response = self.session.request("HEAD", f"/v2/{repo}/manifests/{reference}", _pull(repo), {"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        expect(response, 200, self.endpoint, f"HEAD {repo}:{reference}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:  # the header is optional in the spec; hash the body then
            return self._manifest_head_by_body(repo, reference)
        return ManifestHead(digest, response.headers.get("Content-Type", ""), int(response.headers.get("Content-Length") or 0))

    def _manifest_head_by_body(self, repo: str, reference: str) -> ManifestHead | None:
        import hashlib

        found = self.get_manifest(repo, reference)
        if found is None:
            return None
        body, media_type = found
        return ManifestHead("sha256:" + hashlib.sha256(body).hexdigest(), media_type, len(body))

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str] | None:
        response = self.session.request("GET", f"/v2/{repo}/manifests/{reference}", _pull(repo), {"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        expect(response, 200, self.endpoint, f"GET {repo}:{reference}")
        if len(response.content) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{self.endpoint.label}: manifest {repo}:{reference} is larger than 4 MiB")
        return response.content, response.headers.get("Content-Type", "")

    def put_manifest(self, repo: str, tag: str, body: bytes, media_type: str) -> str:
        """Points tag at a manifest the registry already holds: a tag move costs no blob traffic."""
        response = self.session.request("PUT", f"/v2/{repo}/manifests/{tag}", _push(repo), {"Content-Type": media_type}, data=body)
        expect(response, 201, self.endpoint, f"PUT {repo}:{tag}")
        return response.headers.get("Docker-Content-Digest", "")

    def has_blob(self, repo: str, digest: str) -> bool:
        response = self.session.request("HEAD", f"/v2/{repo}/blobs/{digest}", _pull(repo))
        if response.status_code == 404:
            return False
        expect(response, 200, self.endpoint, f"HEAD {repo}@{digest}")
        return True

    def delete_manifest(self, repo: str, digest: str) -> None:
        response = self.session.request("DELETE", f"/v2/{repo}/manifests/{digest}", f"repository:{repo}:delete")
        if response.status_code == 405:
            raise RegistryError(f"{self.endpoint.label} does not allow deletes (distribution: storage.delete.enabled: true)")
        if response.status_code != 404:
            expect(response, 202, self.endpoint, f"DELETE {repo}@{digest}")

    def blobs(self, repo: str, reference: str) -> list[Blob]:
        """Every blob an image needs (config and layers), through an index's child manifests too."""
        found = self.get_manifest(repo, reference)
        if found is None:
            return []
        document, children = self._parse(repo, reference, *found)
        if children is not None:
            return [blob for child, _ in children for blob in self.blobs(repo, child)]
        entries = [document.get("config")] + list(document.get("layers") or [])
        return [Blob(e["digest"], int(e.get("size") or 0)) for e in entries
                if isinstance(e, dict) and isinstance(e.get("digest"), str)]

    def children(self, repo: str, reference: str) -> list[tuple[str, str]]:
        """The (digest, media type) of each manifest an index names; [] for an image manifest or none."""
        found = self.get_manifest(repo, reference)
        if found is None:
            return []
        return self._parse(repo, reference, *found)[1] or []

    def _parse(self, repo: str, reference: str, body: bytes, media_type: str) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """A manifest and, for an index, its children's (digest, media type)."""
        document = _json(body, self.endpoint, repo, reference)
        media_type = media_type or str(document.get("mediaType", ""))
        if media_type not in INDEX_TYPES and "manifests" not in document:
            return document, None
        return document, [(c["digest"], str(c.get("mediaType") or "")) for c in document.get("manifests") or []
                          if isinstance(c, dict) and isinstance(c.get("digest"), str)]


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def _json(body: bytes, endpoint: Endpoint, repo: str, reference: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise RegistryError(f"{endpoint.label}: manifest {repo}:{reference} is not JSON") from None
    if not isinstance(document, dict):
        raise RegistryError(f"{endpoint.label}: manifest {repo}:{reference} is not a JSON object")
    return document
