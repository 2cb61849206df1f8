"""replication.yaml and the replicate flags: what is accepted, and one clear line for what is not."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from dockerfile_gen.cli import main
from dockerfile_gen.errors import GenError
from dockerfile_gen.registry.config import build, compile_glob
from dockerfile_gen.registry.endpoint import credentials


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "replication.yaml"
    path.write_text(text)
    return str(path)


def error(tmp_path: Path, text: str, **flags: object) -> str:
    args: dict[str, object] = dict(source=None, targets=(), repos=(), insecure=False, prune=False)
    args.update(flags)
    with pytest.raises(GenError) as caught:
        build(write(tmp_path, text), **args)  # type: ignore[arg-type]
    return str(caught.value)


@pytest.mark.parametrize("glob, matches, misses", [
    ("base/*", ["base/root", "base/jre-17"], ["base", "base/a/b", "apps/root"]),
    ("apps/**", ["apps/x", "apps/team/x"], ["apps", "base/x"]),
    ("base/jre-?", ["base/jre-8"], ["base/jre-17"]),
    ("base/[jt]*", ["base/jre-17", "base/tomcat10"], ["base/root"]),
    ("base/[!r]*", ["base/jre-17"], ["base/root"]),
    ("base/root", ["base/root"], ["base/root2"]),
])
def test_globs(glob: str, matches: list[str], misses: list[str]) -> None:
    compiled = compile_glob(glob, "", "--repo")
    assert [compiled.matches(r) for r in matches] == [True] * len(matches)
    assert [compiled.matches(r) for r in misses] == [False] * len(misses)


@pytest.mark.parametrize("glob, why", [
    ("base/[", "'[' at position 6 is never closed"),
    ("Base/*", "is not a repository glob"),
    ("base/*/", "a path segment is empty"),
    ("base/***", "'***'"),
    ("base/]", "stray ']'"),
    ("base/[z-a]", "bad character range"),
    ("base/ x", "is not a repository glob"),
    ("", "must be a non-empty string"),
])
def test_bad_globs(glob: str, why: str) -> None:
    with pytest.raises(GenError, match="^--repo: ") as caught:
        compile_glob(glob, "", "--repo")
    assert why in str(caught.value)


def test_named_registries_with_tls_and_credentials(tmp_path: Path) -> None:
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text("x")
    auth = {"auths": {"registry.example.com": {"auth": base64.b64encode(b"robot$sync:s3cret").decode()}}}
    (tmp_path / "auth.json").write_text(json.dumps(auth))
    config = build(write(tmp_path, """
registries:
  master: {host: "registry.offline:5000", insecure: true}
  offline: {host: "10.0.0.7:5000", ca_file: ca.crt}
  online: {host: registry.example.com, authfile: auth.json, client_cert: client.crt, client_key: client.key}
from: master
to: [offline, online]
repos: ["base/*"]
"""), None, (), (), False, False)
    assert (config.source.host, config.source.insecure) == ("registry.offline:5000", True)
    offline, online = config.targets
    assert offline.ca_file == str(tmp_path / "ca.crt") and not offline.insecure
    assert online.client_key == str(tmp_path / "client.key")
    assert online.authfile is not None and credentials(online.authfile, online.host) == ("robot$sync", "s3cret")
    assert config.wants("base/root") and not config.wants("apps/x")
    # Flags win over the file: --to and --repo replace its lists.
    flagged = build(str(tmp_path / "replication.yaml"), None, ["online"], ["apps/*"], False, True)
    assert [t.name for t in flagged.targets] == ["online"] and flagged.wants("apps/x") and flagged.prune


@pytest.mark.parametrize("text, message", [
    ("from: a.example\nto: [b.example]\ntimeout: 3\n", "replication.yaml: timeout: unknown key (allowed: from, prune, registries, repos, to)"),
    ("from: a.example\nto: [b.example]\nprune: yes please\n", "replication.yaml: prune: must be true or false"),
    ("from: a.example\nto: [offline]\n", "replication.yaml: to[0]: unknown registry 'offline'"),
    ("from: a.example\nto: [a.example]\n", "replication.yaml: to[0]: a.example is the master itself"),
    ("from: a.example\nto: [b.example, b.example]\n", "replication.yaml: to[1]: b.example is listed twice"),
    ("from: a.example\nto: b.example\nrepos: ['base/[']\n", "replication.yaml: repos[0]: 'base/[' is not a repository glob"),
    ("registries:\n  m: {host: 'http://a:5000'}\nfrom: m\nto: [b.example]\n", "replication.yaml: registries.m.host: 'http://a:5000': give HOST[:PORT] without a scheme"),
    ("registries:\n  m: {host: a.example, insecure: 1}\nfrom: m\nto: [b.example]\n", "replication.yaml: registries.m.insecure: must be true or false"),
    ("registries:\n  m: {host: a.example, ca_file: nope.crt}\nfrom: m\nto: [b.example]\n", "replication.yaml: registries.m.ca_file:"),
    ("registries:\n  m: {host: a.example, tls: true}\nfrom: m\nto: [b.example]\n", "replication.yaml: registries.m.tls: unknown key"),
    ("registries:\n  m: {host: 'a.example:70000'}\nfrom: m\nto: [b.example]\n", "replication.yaml: registries.m.host: 'a.example:70000' is not HOST[:PORT]"),
    ("to: [b.example]\n", "--from: is required"),
    ("from: a.example\n", "--to: is required"),
    ("from: a.example\nto: [\"b.example\\n\"]\n", "replication.yaml: to[0]: must not contain newlines or control characters"),
    ("- just\n- a list\n", "replication.yaml: must be a mapping (got list)"),
    ("from: [unclosed\n", "replication.yaml: not valid YAML: line 2, column 1: expected ',' or ']'"),
])
def test_bad_config_one_line(tmp_path: Path, text: str, message: str) -> None:
    got = error(tmp_path, text)
    assert "\n" not in got
    assert got.replace(str(tmp_path) + "/", "").startswith(message), got


def test_hostile_yaml_is_refused_fast(tmp_path: Path) -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
    cases = {
        laughs: "uses a YAML alias (*name) on line 2; aliases are not allowed",
        "to: " + "[" * 5000 + "]" * 5000 + "\n": "nests deeper than 8 levels",
        "repos:\n" + "- x\n" * 20000: "more than 10000 YAML nodes",
        "# " + "x" * (300 << 10) + "\n": "larger than 256 KiB",
    }
    for text, why in cases.items():
        started = time.monotonic()
        got = error(tmp_path, text)
        assert why in got and "\n" not in got, got[:300]
        assert time.monotonic() - started < 5, why


def test_cli_bad_input_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replicate", "--from", "a.example", "--to", "online"]) == 65
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "dockerfile-gen: error: --to: unknown registry 'online': not a name in replication.yaml's registries "
        "(none defined) and not HOST[:PORT] (a host has a '.' or a ':PORT', or is localhost)"]
    assert main(["replicate", "--config", str(tmp_path / "missing.yaml")]) == 65
    assert capsys.readouterr().err.strip().endswith("missing.yaml: cannot read: No such file or directory")


def test_credentials_file_errors(tmp_path: Path) -> None:
    (tmp_path / "auth.json").write_text('{"auths": {"r.example": {"auth": "not base64!"}}}')
    with pytest.raises(GenError, match="auths.r.example.auth: must be base64 of USER:PASSWORD"):
        credentials(str(tmp_path / "auth.json"), "r.example")
    assert credentials(str(tmp_path / "auth.json"), "other.example") is None


@pytest.mark.parametrize("dest", ["apps/orders:1", "orders", "registry.offline:5000/", "http://r.example/apps/x:1"])
def test_push_refuses_a_destination_without_registry(dest: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", "localhost/apps/orders:1", dest]) == 65
    assert capsys.readouterr().err.splitlines() == [
        f"dockerfile-gen: error: push: {dest!r} is not REGISTRY/REPO:TAG (e.g. registry.offline:5000/apps/orders:1.2.0)"]


def test_after_push_the_pushed_registry_is_the_master(tmp_path: Path) -> None:
    text = "registries:\n  m: {host: 'm.example:5000', insecure: true}\n  r: {host: r.example}\nfrom: m\nto: [r]\n"
    config = build(write(tmp_path, text), None, (), ["base/root"], False, False, source_host="m.example:5000")
    assert (config.source.name, config.source.insecure) == ("m", True)  # the file's settings for that host
    assert config.wants("base/root") and not config.wants("base/jre-17")
    with pytest.raises(GenError, match=r"from: is m \(m.example:5000\), but the push went to other.example:5000"):
        build(str(tmp_path / "replication.yaml"), None, (), [], False, False, source_host="other.example:5000")
    flags_only = build(None, None, ["r.example"], [], True, False, source_host="m.example:5000")
    assert (flags_only.source.host, flags_only.source.insecure, flags_only.targets[0].insecure) == ("m.example:5000", True, True)


def test_a_bad_replication_file_fails_before_the_push(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "from: m.example\nto: [r.example]\nrepos: ['apps/[']\n")
    # No engine is needed to refuse it: the push never starts.
    assert main(["push", "localhost/apps/orders:1", "m.example/apps/orders:1", "--engine", "docker", "--replicate", bad]) == 65
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "repos[0]: 'apps/[' is not a repository glob" in err[0], err
