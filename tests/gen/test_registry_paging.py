"""Paging through a registry's listings (`Link: <…>; rel="next"`) against hostile and broken Links:
credentials go only to the registry they belong to, and a listing must progress and is bounded."""
from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockerfile_gen.cli import main
from dockerfile_gen.registry.client import Client
from dockerfile_gen.registry.endpoint import Endpoint
from dockerfile_gen.registry.session import RegistryError
from tests.support.fake_registry import FakeRegistry

SECRET = "Basic " + base64.b64encode(b"sync:s3cret").decode()


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    yield fake
    fake.close()


@pytest.fixture
def elsewhere() -> Iterator[FakeRegistry]:
    """Another server, on another port: what a hostile Link points at."""
    fake = FakeRegistry()
    yield fake
    fake.close()


def client(registry: FakeRegistry, tmp_path: Path, page_size: int = 2) -> Client:
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {registry.host: {"auth": base64.b64encode(b"sync:s3cret").decode()}}}))
    return Client(Endpoint(registry.host, registry.host, insecure=True, authfile=str(auth)), page_size=page_size)


def listing(client: Client) -> list[str]:
    try:
        return list(client.repositories())
    finally:
        client.close()


def test_pages_are_followed_with_the_credentials(registry: FakeRegistry, tmp_path: Path) -> None:
    for name in ("a/one", "a/two", "b/three", "c/four", "c/five"):
        registry.image(name, "1", name)
    assert listing(client(registry, tmp_path)) == ["a/one", "a/two", "b/three", "c/five", "c/four"]
    pages = [seen for seen in registry.requests if seen.path.startswith("/v2/_catalog")]
    assert len(pages) == 3 and all(seen.authorization == SECRET for seen in pages)


@pytest.mark.parametrize("target", ["http://ELSEWHERE/v2/_catalog?n=2&last=b", "https://HOST/v2/_catalog?n=2&last=b",
                                    "//ELSEWHERE/v2/_catalog?last=b"])
def test_a_link_to_another_origin_is_refused_and_gets_no_credentials(registry: FakeRegistry, elsewhere: FakeRegistry,
                                                                     tmp_path: Path, target: str) -> None:
    link = target.replace("ELSEWHERE", elsewhere.host).replace("HOST", registry.host)
    registry.pages = lambda path: (["a", "b"], f'<{link}>; rel="next"') if "last=" not in path else ([], None)
    with pytest.raises(RegistryError) as caught:
        listing(client(registry, tmp_path))
    message = str(caught.value)
    assert "\n" not in message and "next-page Link points to" in message and "not to this registry" in message, message
    assert elsewhere.requests == []  # nothing at all went there, credentials least of all
    assert [seen.path for seen in registry.requests if seen.path.startswith("/v2/_catalog")] == ["/v2/_catalog?n=2"]


@pytest.mark.parametrize("link", ["</v2/_catalog?n=2>", "</v2/_catalog?n=2&last=b>", "</v2/_catalog?last=b&n={page}>"])
def test_a_link_back_to_a_listed_page_is_an_error(registry: FakeRegistry, tmp_path: Path, link: str) -> None:
    served = []

    def pages(path: str) -> tuple[list[str], str | None]:
        served.append(path)
        if len(served) > 50:  # a listing that loops would otherwise never end
            return [], None
        return ["a", "b"], link.format(page=len(served) + 2) + '; rel="next"'

    registry.pages = pages
    with pytest.raises(RegistryError, match="repeats a page already listed"):
        listing(client(registry, tmp_path))
    assert len(served) <= 2, served


def test_a_listing_is_bounded_in_pages(registry: FakeRegistry, tmp_path: Path) -> None:
    served = []

    def pages(path: str) -> tuple[list[str], str | None]:  # forever a new page, each with one new entry
        served.append(path)
        if len(served) > 500:
            return [], None
        return [f"r{len(served)}"], f'</v2/_catalog?n=1&last=r{len(served)}>; rel="next"'

    registry.pages = pages
    listed = client(registry, tmp_path)
    listed.session.max_pages = 20
    with pytest.raises(RegistryError, match="more than 20 pages"):
        listing(listed)
    assert len(served) == 20


def test_a_listing_is_bounded_in_entries(registry: FakeRegistry, tmp_path: Path) -> None:
    def pages(path: str) -> tuple[list[str], str | None]:
        last = int(urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("last", ["0"])[0])
        if last >= 300:
            return [], None
        return [f"r{last + i}" for i in range(1, 4)], f'</v2/_catalog?n=3&last={last + 3}>; rel="next"'

    registry.pages = pages
    listed = client(registry, tmp_path, page_size=3)
    listed.session.max_entries = 10
    with pytest.raises(RegistryError, match="more than 10 entries"):
        listing(listed)


def test_a_hostile_master_link_is_one_error_line(registry: FakeRegistry, elsewhere: FakeRegistry,
                                                 capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    registry.pages = lambda path: (["a"], f'<http://{elsewhere.host}/v2/_catalog?last=a>; rel="next"')
    assert main(["replicate", "--from", registry.host, "--to", elsewhere.host, "--insecure"]) == 69
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"dockerfile-gen: error: --from: master: {registry.host}: GET /v2/_catalog: "
                                               f"the next-page Link points to http://{elsewhere.host}"), err
    assert elsewhere.requests == []
