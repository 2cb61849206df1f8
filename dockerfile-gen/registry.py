"""A client for the Docker Registry HTTP API v2 (the distribution spec): what replication reads and deletes.

It lists repositories and tags, reads a tag's manifest digest (`Docker-Content-Digest`) with every
manifest type in Accept (Docker v2 and OCI, manifests and indexes), checks blobs, and deletes
manifests by digest. Authentication is HTTP basic or the bearer-token flow (Harbor, distribution with
token auth), with the credentials of a containers-auth.json file. Blob copying is skopeo's job
(replicate.py), never this module's.
"""
from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from dockerfile_gen.errors import GenError

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = frozenset(MANIFEST_TYPES[:2])
ACCEPT = ", ".join(MANIFEST_TYPES)
PAGE = 1000  # catalog and tag list page size; the Link header carries the rest
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
MAX_MANIFEST_BYTES = 4 << 20  # the distribution spec's own manifest limit
_BEARER_PARAM = re.compile(r'(\w+)="([^"]*)"')


class Unreachable(Exception):
    """The registry did not answer (refused, reset, timed out, TLS failed): the run can resume later."""


class RegistryError(Exception):
    """The registry answered, but not as the API says it should (auth refused, deletes disabled, ...)."""


@dataclass(frozen=True)
class Endpoint:
    """One registry as the user configured it."""

    name: str  # the name in replication.yaml, or the host itself
    host: str  # HOST[:PORT]
    insecure: bool = False  # plain HTTP, no TLS
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    authfile: str | None = None  # containers-auth.json (podman/skopeo login) or a docker config.json

    @property
    def label(self) -> str:
        return self.host if self.name == self.host else f"{self.name} ({self.host})"


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


def credentials(authfile: str, host: str) -> tuple[str, str] | None:
    """The user and password for host in a containers-auth.json / docker config.json."""
    try:
        with open(authfile, "rb") as handle:
            data = json.loads(handle.read(1 << 20))
    except OSError as exc:
        raise GenError(f"cannot read credentials: {exc.strerror}", authfile) from None
    except ValueError:
        raise GenError("is not JSON (expected a containers-auth.json, as `podman login` writes it)", authfile) from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        raise GenError("has no 'auths' mapping (expected a containers-auth.json, as `podman login` writes it)", authfile)
    entry = auths.get(host) or auths.get(f"https://{host}") or auths.get(f"http://{host}")
    if entry is None:
        return None
    try:
        user, _, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
    except (KeyError, TypeError, ValueError):
        raise GenError(f"auths.{host}.auth: must be base64 of USER:PASSWORD", authfile) from None
    return user, password


class Client:
    """One keep-alive session to one registry."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        scheme = "http" if endpoint.insecure else "https"
        self.base = f"{scheme}://{endpoint.host}"
        self.session = requests.Session()
        # Passed with each request: a session-wide verify loses to REQUESTS_CA_BUNDLE in requests.
        self.verify: str | bool = endpoint.ca_file or True
        if endpoint.client_cert:
            self.session.cert = (endpoint.client_cert, endpoint.client_key) if endpoint.client_key else endpoint.client_cert
        self.auth = credentials(endpoint.authfile, endpoint.host) if endpoint.authfile else None
        self._tokens: dict[str, str] = {}  # scope -> bearer token

    def close(self) -> None:
        self.session.close()

    # -- transport -------------------------------------------------------------------------
    def _request(self, method: str, path: str, scope: str, headers: Mapping[str, str] | None = None,
                 data: bytes | None = None, url: str | None = None) -> requests.Response:
        target = url or self.base + path
        sent = dict(headers or {})
        if scope in self._tokens:
            sent["Authorization"] = f"Bearer {self._tokens[scope]}"
        response = self._send(method, target, sent, data)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            if challenge.lower().startswith("bearer "):
                self._tokens[scope] = self._token(challenge, scope)
                sent["Authorization"] = f"Bearer {self._tokens[scope]}"
                response = self._send(method, target, sent, data)
            if response.status_code == 401:
                how = "refused the credentials" if self.auth else "needs credentials (set authfile for it in replication.yaml)"
                raise RegistryError(f"{self.endpoint.label} {how}")
        return response

    def _send(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None) -> requests.Response:
        # Basic credentials go with every request that carries no bearer token: a registry with
        # basic auth wants them on each request, one with token auth ignores them and sends a challenge.
        auth = None if "Authorization" in headers else self.auth
        try:
            return self.session.request(method, url, headers=headers, data=data, auth=auth, verify=self.verify,
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=True)
        except requests.exceptions.SSLError as exc:
            reason = _reason(exc)
            if "certificate" in reason:  # a setup problem, not an outage: retrying will not help
                raise RegistryError(f"{self.endpoint.label}: TLS failed ({reason}): name the CA that signed "
                                    "its certificate in ca_file (replication.yaml)") from None
            raise Unreachable(f"TLS failed ({reason}); for a plain-HTTP registry use --insecure (or insecure: true)") from None
        except requests.exceptions.RequestException as exc:
            raise Unreachable(_reason(exc)) from None

    def _token(self, challenge: str, scope: str) -> str:
        params = dict(_BEARER_PARAM.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("http://", "https://")):
            raise RegistryError(f"{self.endpoint.label} sent a bearer challenge without a realm URL")
        if scope:
            params.setdefault("scope", scope)
        try:
            answer = self.session.get(realm, params=params, auth=self.auth, verify=self.verify,
                                      timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"token service {realm}: {_reason(exc)}") from None
        if answer.status_code != 200:
            raise RegistryError(f"{self.endpoint.label}: token service refused ({answer.status_code})")
        body = answer.json()
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise RegistryError(f"{self.endpoint.label}: token service sent no token")
        return token

    # -- API -------------------------------------------------------------------------------
    def ping(self) -> None:
        response = self._request("GET", "/v2/", "")
        if response.status_code != 200:
            raise RegistryError(f"{self.endpoint.label} is not a registry (GET /v2/ answered {response.status_code})")

    def repositories(self) -> Iterator[str]:
        yield from self._pages(f"/v2/_catalog?n={PAGE}", "registry:catalog:*", "repositories")

    def tags(self, repo: str) -> list[str]:
        return list(self._pages(f"/v2/{repo}/tags/list?n={PAGE}", _pull(repo), "tags", missing_ok=True))

    def _pages(self, path: str, scope: str, key: str, missing_ok: bool = False) -> Iterator[str]:
        url: str | None = self.base + path
        while url:
            response = self._request("GET", "", scope, url=url)
            if response.status_code == 404 and missing_ok:
                return
            _expect(response, 200, self.endpoint, f"GET {urllib.parse.urlsplit(url).path}")
            body = response.json()
            for item in (body.get(key) or []) if isinstance(body, dict) else []:
                if isinstance(item, str):
                    yield item
            following = response.links.get("next", {}).get("url")
            url = urllib.parse.urljoin(self.base, following) if following else None

    def head_manifest(self, repo: str, reference: str) -> ManifestHead | None:
        """The digest a tag (or digest) resolves to, or None when the registry does not have it."""
        response = self._request("HEAD", f"/v2/{repo}/manifests/{reference}", _pull(repo), {"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        _expect(response, 200, self.endpoint, f"HEAD {repo}:{reference}")
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
        response = self._request("GET", f"/v2/{repo}/manifests/{reference}", _pull(repo), {"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        _expect(response, 200, self.endpoint, f"GET {repo}:{reference}")
        if len(response.content) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{self.endpoint.label}: manifest {repo}:{reference} is larger than 4 MiB")
        return response.content, response.headers.get("Content-Type", "")

    def put_manifest(self, repo: str, tag: str, body: bytes, media_type: str) -> str:
        """Points tag at a manifest the registry already holds: a tag move costs no blob traffic."""
        response = self._request("PUT", f"/v2/{repo}/manifests/{tag}", _push(repo), {"Content-Type": media_type}, data=body)
        _expect(response, 201, self.endpoint, f"PUT {repo}:{tag}")
        return response.headers.get("Docker-Content-Digest", "")

    def has_blob(self, repo: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", _pull(repo))
        if response.status_code == 404:
            return False
        _expect(response, 200, self.endpoint, f"HEAD {repo}@{digest}")
        return True

    def delete_manifest(self, repo: str, digest: str) -> None:
        response = self._request("DELETE", f"/v2/{repo}/manifests/{digest}", f"repository:{repo}:delete")
        if response.status_code == 405:
            raise RegistryError(f"{self.endpoint.label} does not allow deletes (distribution: storage.delete.enabled: true)")
        if response.status_code != 404:
            _expect(response, 202, self.endpoint, f"DELETE {repo}@{digest}")

    def blobs(self, repo: str, reference: str) -> list[Blob]:
        """Every blob an image needs (config and layers), through an index's child manifests too."""
        found = self.get_manifest(repo, reference)
        if found is None:
            return []
        body, media_type = found
        document = _json(body, self.endpoint, repo, reference)
        media_type = media_type or str(document.get("mediaType", ""))
        if media_type in INDEX_TYPES or "manifests" in document:
            blobs: list[Blob] = []
            for child in document.get("manifests") or []:
                if isinstance(child, dict) and isinstance(child.get("digest"), str):
                    blobs.extend(self.blobs(repo, child["digest"]))
            return blobs
        entries = [document.get("config")] + list(document.get("layers") or [])
        return [Blob(e["digest"], int(e.get("size") or 0)) for e in entries
                if isinstance(e, dict) and isinstance(e.get("digest"), str)]


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


def _expect(response: requests.Response, status: int, endpoint: Endpoint, what: str) -> None:
    if response.status_code != status:
        detail = response.text.strip().replace("\n", " ")[:200]
        raise RegistryError(f"{endpoint.label}: {what} answered {response.status_code} {detail}".rstrip())


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests error, e.g. 'connection refused', on one line."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Connection reset",
                   "No route to host", "Temporary failure in name resolution", "certificate verify failed",
                   "RemoteDisconnected", "Connection aborted"):
        if marker.lower() in text.lower():
            return marker[0].lower() + marker[1:]
    return text.splitlines()[0][:200] if text else type(exc).__name__
