"""A client for the Docker Registry HTTP API v2 (the distribution spec): what replication reads and deletes.

It lists repositories and tags, reads a tag's manifest digest (`Docker-Content-Digest`) with every
manifest type in Accept (Docker v2 and OCI, manifests and indexes), checks blobs, and deletes
manifests by digest. Authentication is HTTP basic or the bearer-token flow (Harbor, distribution with
token auth), with the credentials of a containers-auth.json file. Blob copying is skopeo's job
(replicate.py), never this module's.
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

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
MAX_REDIRECTS = 5
_BEARER_PARAM = re.compile(r'(\w+)="([^"]*)"')
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


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


@dataclass(frozen=True)
class Response:
    status_code: int
    headers: Message
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except ValueError:
            return None

    @property
    def next_url(self) -> str | None:
        """The `Link: <…>; rel="next"` of a paginated catalog or tag list."""
        found = _NEXT_LINK.search(self.headers.get("Link", ""))
        return found.group(1) if found else None


class Client:
    """Keep-alive connections to one registry (and its token service), on the standard library's
    http.client: a re-run that changes nothing is a few dozen small requests, and a CLI that starts
    in a fraction of the time an HTTP library's imports take."""

    def __init__(self, endpoint: Endpoint, page_size: int = PAGE) -> None:
        self.endpoint = endpoint
        self.page_size = page_size
        self.base = f"{'http' if endpoint.insecure else 'https'}://{endpoint.host}"
        self.auth = credentials(endpoint.authfile, endpoint.host) if endpoint.authfile else None
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._tls: ssl.SSLContext | None = None

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    # -- transport -------------------------------------------------------------------------
    def _request(self, method: str, path: str, scope: str, headers: Mapping[str, str] | None = None,
                 data: bytes | None = None, url: str | None = None) -> Response:
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

    def _send(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None) -> Response:
        sent = dict(headers)
        # Basic credentials go with every request that carries no bearer token: a registry with
        # basic auth wants them on each request, one with token auth ignores them and sends a challenge.
        if self.auth and "Authorization" not in sent:
            sent["Authorization"] = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
        for _ in range(MAX_REDIRECTS):
            response = self._exchange(method, url, sent, data)
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location or method not in ("GET", "HEAD"):
                return response
            url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url).netloc != self.endpoint.host:
                sent.pop("Authorization", None)  # never hand credentials to another host
        raise RegistryError(f"{self.endpoint.label}: more than {MAX_REDIRECTS} redirects for {method} {url}")

    def _exchange(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None) -> Response:
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        key = (parts.scheme, parts.netloc)
        for attempt in range(2):
            reused = key in self._connections
            connection = self._connections.get(key) or self._connect(*key)
            self._connections[key] = connection
            try:
                connection.request(method, path, body=data, headers=dict(headers))
                answer = connection.getresponse()
                body = answer.read()
                if answer.will_close:
                    self._drop(key)
                return Response(answer.status, answer.headers, body)
            except ssl.SSLCertVerificationError as exc:
                self._drop(key)
                # A setup problem, not an outage: running again will not help.
                raise RegistryError(f"{self.endpoint.label}: TLS failed ({exc.verify_message}): name the CA "
                                    "that signed its certificate in ca_file (replication.yaml)") from None
            except ssl.SSLError as exc:
                self._drop(key)
                raise Unreachable(f"TLS failed ({exc.reason or exc}); for a plain-HTTP registry use --insecure "
                                  "(or insecure: true)") from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(key)
                # A kept-alive connection the registry closed meanwhile: one fresh try.
                if reused and attempt == 0 and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                    continue
                raise Unreachable(_reason(exc)) from None
        raise Unreachable("connection closed by the registry")  # pragma: no cover - the loop returns or raises

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(netloc, timeout=CONNECT_TIMEOUT, context=self._tls_context())
        else:
            connection = http.client.HTTPConnection(netloc, timeout=CONNECT_TIMEOUT)
        try:
            connection.connect()
        except ssl.SSLCertVerificationError as exc:
            raise RegistryError(f"{self.endpoint.label}: TLS failed ({exc.verify_message}): name the CA "
                                "that signed its certificate in ca_file (replication.yaml)") from None
        except ssl.SSLError as exc:
            raise Unreachable(f"TLS failed ({exc.reason or exc}); for a plain-HTTP registry use --insecure "
                              "(or insecure: true)") from None
        except OSError as exc:
            raise Unreachable(_reason(exc)) from None
        if connection.sock is not None:
            connection.sock.settimeout(READ_TIMEOUT)  # connecting is quick or dead; a big manifest may take longer
        return connection

    def _drop(self, key: tuple[str, str]) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context(cafile=self.endpoint.ca_file)
            if self.endpoint.client_cert:
                try:
                    context.load_cert_chain(self.endpoint.client_cert, self.endpoint.client_key)
                except (OSError, ssl.SSLError) as exc:
                    raise GenError(f"cannot load the client certificate: {exc}", self.endpoint.client_cert) from None
            self._tls = context
        return self._tls

    def _token(self, challenge: str, scope: str) -> str:
        params = dict(_BEARER_PARAM.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("http://", "https://")):
            raise RegistryError(f"{self.endpoint.label} sent a bearer challenge without a realm URL")
        if scope:
            params.setdefault("scope", scope)
        query = urllib.parse.urlencode(params)
        answer = self._send("GET", realm + ("&" if "?" in realm else "?") + query, {}, None)
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
        yield from self._pages(f"/v2/_catalog?n={self.page_size}", "registry:catalog:*", "repositories")

    def tags(self, repo: str) -> list[str]:
        return list(self._pages(f"/v2/{repo}/tags/list?n={self.page_size}", _pull(repo), "tags", missing_ok=True))

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
            following = response.next_url
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


def _expect(response: Response, status: int, endpoint: Endpoint, what: str) -> None:
    if response.status_code != status:
        detail = response.text.strip().replace("\n", " ")[:200]
        raise RegistryError(f"{endpoint.label}: {what} answered {response.status_code} {detail}".rstrip())


def _reason(exc: Exception) -> str:
    """Why a connection failed, in a few words: 'connection refused', 'timed out', …"""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"name not resolved ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        return "connection closed by the registry"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return " ".join(str(exc).split())[:200] or type(exc).__name__
