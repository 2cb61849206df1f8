"""The HTTP session with one registry: keep-alive connections, TLS, authentication, redirects, paging.

Authentication is HTTP basic or the bearer-token flow (Harbor, distribution with token auth), with
the credentials of a containers-auth.json file; bearer tokens are kept per scope. Credentials go only
to the registry's own origin (scheme, host, port): a redirect elsewhere drops them, and a next-page
`Link` elsewhere is refused. A listing must progress and is bounded (MAX_PAGES, MAX_ENTRIES). What
the requests mean (manifests, blobs, tags) is dockerfile_gen.registry.client's job, never this module's.
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
from dockerfile_gen.registry.endpoint import Endpoint, credentials

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
MAX_REDIRECTS = 5
# A listing longer than this is refused, not cut short: 500 pages of the 1000 entries we ask for, or
# 5000 of the 100 some registries cap a page at.
MAX_PAGES = 10_000
MAX_ENTRIES = 500_000
_BEARER_PARAM = re.compile(r'(\w+)="([^"]*)"')
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class Unreachable(Exception):
    """The registry did not answer (refused, reset, timed out, TLS failed): the run can resume later."""


class RegistryError(Exception):
    """The registry answered, but not as the API says it should (auth refused, deletes disabled, ...)."""


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


class Session:
    """Keep-alive connections to one registry (and its token service), on the standard library's
    http.client: a re-run that changes nothing is a few dozen small requests, and a CLI that starts
    in a fraction of the time an HTTP library's imports take."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.base = f"{'http' if endpoint.insecure else 'https'}://{endpoint.host}"
        self.auth = credentials(endpoint.authfile, endpoint.host) if endpoint.authfile else None
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._tls: ssl.SSLContext | None = None
        self.origin = _origin(self.base)
        self.max_pages = MAX_PAGES
        self.max_entries = MAX_ENTRIES

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def request(self, method: str, path: str, scope: str, headers: Mapping[str, str] | None = None,
                data: bytes | None = None, url: str | None = None) -> Response:
        """One API request under scope, fetching a bearer token for it when the registry asks."""
        target = url or self.base + path
        if _origin(target) != self.origin:  # pages() says why first; this is the backstop
            raise RegistryError(f"{self.endpoint.label}: refused to send a request for it to {_shown(target)}")
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

    def pages(self, path: str, scope: str, key: str, missing_ok: bool = False) -> Iterator[str]:
        """The strings under key in a paginated listing (catalog, tag list), page after page.

        Every next-page Link must point at this registry (its credentials go nowhere else) and at a
        page not listed yet, by URL and by its `last`; a listing has at most max_pages pages and
        max_entries entries. Anything else is a RegistryError: a listing is never cut short silently."""
        url = self.base + path
        what = f"GET {urllib.parse.urlsplit(url).path}"
        listed, lasts = {url}, set(_lasts(url))
        entries = 0
        for page in range(1, self.max_pages + 1):
            response = self.request("GET", "", scope, url=url)
            if response.status_code == 404 and missing_ok and page == 1:
                return
            expect(response, 200, self.endpoint, what)
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get(key) or [], list):
                raise RegistryError(f"{self.endpoint.label}: {what} answered 200 without a {key!r} list")
            for item in body.get(key) or []:
                entries += 1
                if entries > self.max_entries:
                    raise RegistryError(f"{self.endpoint.label}: {what}: more than {self.max_entries} entries; refusing to list further")
                if isinstance(item, str):
                    yield item
            following = response.next_url
            if not following:
                return
            url = urllib.parse.urljoin(url, following)
            self._check_next(url, what, listed, lasts)
        raise RegistryError(f"{self.endpoint.label}: {what}: more than {self.max_pages} pages; refusing to list further")

    def _check_next(self, url: str, what: str, listed: set[str], lasts: set[str]) -> None:
        """A next page must be on this registry and new; listed and lasts grow by it."""
        if _origin(url) != self.origin:
            raise RegistryError(f"{self.endpoint.label}: {what}: the next-page Link points to {_shown(url)}, not to "
                                f"this registry ({self.base}); its credentials go nowhere else")
        last = _lasts(url)
        if url in listed or lasts.intersection(last):
            parts = urllib.parse.urlsplit(url)
            raise RegistryError(f"{self.endpoint.label}: {what}: the next-page Link repeats a page already listed "
                                f"({_shown(parts.path + '?' + parts.query)}): the listing would never end")
        listed.add(url)
        lasts.update(last)

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
            if _origin(url) != self.origin:
                sent.pop("Authorization", None)  # never hand credentials to another origin
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
            except ssl.SSLError as exc:
                self._drop(key)
                raise _tls_failure(self.endpoint, exc) from None
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
        except ssl.SSLError as exc:
            raise _tls_failure(self.endpoint, exc) from None
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


def expect(response: Response, status: int, endpoint: Endpoint, what: str) -> None:
    """Raises RegistryError, with the start of the registry's answer, unless it answered status."""
    if response.status_code != status:
        detail = response.text.strip().replace("\n", " ")[:200]
        raise RegistryError(f"{endpoint.label}: {what} answered {response.status_code} {detail}".rstrip())


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the default port filled in; port -1 when it is not a number."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme, -1)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def _lasts(url: str) -> list[str]:
    """The `last` parameters of a listing URL: the entry the page starts after."""
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("last", [])


def _shown(text: str) -> str:
    """A URL from a registry's headers, as one short line of an error message."""
    parts = urllib.parse.urlsplit(text)
    shown = f"{parts.scheme}://{parts.netloc}" if parts.scheme or parts.netloc else text
    return " ".join(shown.split())[:200]


def _tls_failure(endpoint: Endpoint, exc: ssl.SSLError) -> Exception:
    if isinstance(exc, ssl.SSLCertVerificationError):
        # A setup problem, not an outage: running again will not help.
        return RegistryError(f"{endpoint.label}: TLS failed ({exc.verify_message}): name the CA "
                             "that signed its certificate in ca_file (replication.yaml)")
    return Unreachable(f"TLS failed ({exc.reason or exc}); for a plain-HTTP registry use --insecure "
                       "(or insecure: true)")


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
