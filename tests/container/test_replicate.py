"""Replication across three real docker-registry processes: a master and two replicas on 127.0.0.1.

The tree's images are pushed with `tree build --push --replicate-to`, two app images built from
their generated Dockerfiles with `dockerfile-gen push`; `dockerfile-gen replicate` then runs with
a replica killed mid-run, again after it is back, again with nothing changed, after a tag moved
and with --prune: beside images only a replica has, with a multi-platform index whose child lost its
tag, and from an empty master. Every check reads the registries' own HTTP API, never the tool's
output alone. Every run records what it copied in the module's own state directory (XDG_STATE_HOME).
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.podman_engine import REPO, Engine, TreeBuild, compile_app, tree_build
from tests.support.registries import RegistryProcess, free_port

pytestmark = [pytest.mark.container, pytest.mark.replication]

TREE_REPOS = ("base/root", "base/jre-17", "base/tomcat10")
APPS = (("hello-jar", "jar"), ("hello-war", "war"))
EXIT_USER_ERROR, EXIT_UNAVAILABLE, EXIT_INCOMPLETE = 65, 69, 75


@dataclass(frozen=True)
class Topology:
    master: RegistryProcess
    offline: RegistryProcess  # the second replica in the offline network
    online: RegistryProcess  # the replica the clusters pull from
    config: Path  # replication.yaml naming all three

    @property
    def replicas(self) -> tuple[RegistryProcess, RegistryProcess]:
        return self.offline, self.online


@pytest.fixture(scope="module")
def topology(engine: Engine) -> Iterator[Topology]:
    root = engine.work / "i13-registries"
    registries = [RegistryProcess(name, root) for name in ("master", "offline", "online")]
    engine.env["XDG_STATE_HOME"] = str(root / "state")  # the record --prune relies on, for this module only
    try:
        for registry in registries:
            registry.start()
        master, offline, online = registries
        config = root / "replication.yaml"
        config.write_text(
            "registries:\n"
            f"  master: {{host: '{master.host}', insecure: true}}\n"
            f"  offline: {{host: '{offline.host}', insecure: true}}\n"
            f"  online: {{host: '{online.host}', insecure: true}}\n"
            "from: master\n"
            "to: [offline, online]\n"
            "repos: ['base/*', 'apps/**']\n"
        )
        yield Topology(master, offline, online, config)
    finally:
        engine.env.pop("XDG_STATE_HOME", None)
        for registry in registries:
            registry.stop()


def gen(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    return engine.run(sys.executable, "-m", "dockerfile_gen", *args, check=False)


def assert_mirrored(topology: Topology, prefix: str = "") -> dict[str, str]:
    """Each replica serves every master tag (under prefix) with the master's digest, and nothing else."""
    master = {ref: d for ref, d in topology.master.digests().items() if ref.startswith(prefix)}
    assert master, f"the master has no {prefix}* images"
    for replica in topology.replicas:
        assert {ref: d for ref, d in replica.digests().items() if ref.startswith(prefix)} == master, replica.name
    return master


def build_app(engine: Engine, tmp: Path, app: str, kind: str) -> str:
    context = tmp / app
    compile_app(REPO / "examples" / "apps" / app, context, kind)
    engine.gen("app", str(context / "app.yaml"), "-o", str(tmp / f"{app}-gen"), "--tag", "test")
    image = f"localhost/apps/{app}:test"
    engine.podman("build", "--format", "docker", "-t", image, "-f", str(tmp / f"{app}-gen" / "Dockerfile"), str(context))
    return image


@pytest.fixture(scope="module")
def app_images(engine: Engine, built_tree: TreeBuild, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("i13-apps")
    return {app: build_app(engine, tmp, app, kind) for app, kind in APPS}


def test_tree_push_replicates_to_every_replica(engine: Engine, built_tree: TreeBuild, topology: Topology) -> None:
    pushed = tree_build(engine, "--push", f"{topology.master.host}/base", "--no-tls-verify",
                        "--replicate-to", topology.offline.host, "--replicate-to", topology.online.host,
                        images=("tomcat10",))  # one branch of the tree: root → jre-17 → tomcat10
    assert pushed.log.count("pushed to") == 3, pushed.log
    progress = [line for line in pushed.log.splitlines() if line.startswith("[") and " sha256:" in line]
    assert len(progress) == 3, pushed.log  # one line per image
    assert all(line.count("copied") == 2 and line.count("verified") == 2 for line in progress), progress
    mirrored = assert_mirrored(topology, "base/")
    assert set(mirrored) == {f"{repo}:1.0.0" for repo in TREE_REPOS}


def test_replica_killed_mid_run_then_resumed(engine: Engine, topology: Topology, app_images: dict[str, str]) -> None:
    for app, image in app_images.items():
        engine.gen("push", image, f"{topology.master.host}/apps/{app}:1", "--engine", "podman", "--no-tls-verify")
    argv = [sys.executable, "-m", "dockerfile_gen", "replicate", "--config", str(topology.config), "--repo", "apps/*"]
    run = subprocess.Popen(argv, env=engine.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stderr is not None
    lines = []
    for line in run.stderr:  # the first progress line is the event: the online replica dies then
        lines.append(line)
        if line.startswith("[1/2]"):
            topology.online.kill()
            break
    stderr = "".join(lines) + run.stderr.read()
    stdout = run.stdout.read() if run.stdout else ""
    assert run.wait(timeout=600) == EXIT_INCOMPLETE, stderr
    assert "[1/2] apps/hello-jar:1" in stderr and "[2/2] apps/hello-war:1" in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("dockerfile-gen: error:")]
    assert len(errors) == 1, stderr
    assert f"replica online ({topology.online.host}): unreachable" in errors[0]
    assert "missing 1 image(s): apps/hello-war:1" in errors[0], errors[0]
    assert "1 failed" in stdout, stdout
    # The other replica completed the job.
    assert topology.offline.digest("apps/hello-war", "1") == topology.master.digest("apps/hello-war", "1")

    topology.online.start()
    again = gen(engine, "replicate", "--config", str(topology.config), "--repo", "apps/*")
    assert again.returncode == 0, again.stderr
    assert "2 images x 2 replicas: 1 copied, 0 tags moved, 3 already there, 0 failed;" in again.stdout, again.stdout
    assert_mirrored(topology, "apps/")


def test_rerun_with_nothing_changed_copies_nothing(engine: Engine, topology: Topology, app_images: dict[str, str]) -> None:
    blobs_before = [replica.blob_files() for replica in topology.replicas]
    result = gen(engine, "replicate", "--from", topology.master.host, "--to", topology.offline.host,
                 "--to", topology.online.host, "--insecure")
    assert result.returncode == 0, result.stderr
    images = len(topology.master.digests())
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == images == 5, result.stderr
    assert all(line.count("already there") == 2 for line in progress), progress
    assert f"0 copied, 0 tags moved, {images * 2} already there, 0 failed; 0 B sent" in result.stdout, result.stdout
    assert [replica.blob_files() for replica in topology.replicas] == blobs_before
    assert_mirrored(topology)


def test_listing_follows_the_registrys_pages(topology: Topology, app_images: dict[str, str]) -> None:
    """Catalogs and tag lists longer than a page come in pages linked by `Link: <…>; rel="next"`."""
    from dockerfile_gen.registry.client import Client
    from dockerfile_gen.registry.endpoint import Endpoint

    client = Client(Endpoint(topology.master.host, topology.master.host, insecure=True), page_size=2)
    try:
        listed = {f"{repo}:{tag}" for repo in client.repositories() for tag in client.tags(repo)}
    finally:
        client.close()
    assert listed == set(topology.master.digests()) and len(listed) == 5


def test_moved_tag_propagates_and_deletes_need_prune(engine: Engine, topology: Topology, app_images: dict[str, str],
                                                     tmp_path: Path) -> None:
    master = topology.master
    # Version 2 of hello-jar: the same layers, a new config. Pushing it replicates it at once.
    (tmp_path / "Dockerfile").write_text(f"FROM {app_images['hello-jar']}\nLABEL org.example.release=2\n")
    engine.podman("build", "--format", "docker", "-t", "localhost/apps/hello-jar:v2", str(tmp_path))
    pushed = engine.gen("push", "localhost/apps/hello-jar:v2", f"{master.host}/apps/hello-jar:2", "--engine", "podman",
                        "--no-tls-verify", "--replicate", str(topology.config))
    assert "apps/hello-jar:2" in pushed.stderr and "0 failed" in pushed.stdout, pushed.stdout + pushed.stderr
    v1, v2 = master.digest("apps/hello-jar", "1"), master.digest("apps/hello-jar", "2")
    assert v1 and v2 and v1 != v2
    assert all(replica.digest("apps/hello-jar", "2") == v2 for replica in topology.replicas)

    # `live` points at version 1 everywhere, then moves to version 2 on the master only.
    engine.run("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--preserve-digests",
               f"docker://{master.host}/apps/hello-jar:1", f"docker://{master.host}/apps/hello-jar:live")
    assert gen(engine, "replicate", "--config", str(topology.config)).returncode == 0
    assert all(replica.digest("apps/hello-jar", "live") == v1 for replica in topology.replicas)
    engine.run("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--preserve-digests",
               f"docker://{master.host}/apps/hello-jar:2", f"docker://{master.host}/apps/hello-jar:live")
    moved = gen(engine, "replicate", "--config", str(topology.config))
    assert moved.returncode == 0, moved.stderr
    live_line = next(line for line in moved.stderr.splitlines() if "apps/hello-jar:live" in line)
    assert live_line.count("tag moved") == 2, live_line  # the manifest was there: no blobs sent
    assert all(replica.digest("apps/hello-jar", "live") == v2 for replica in topology.replicas)

    # Version 1 is deleted on the master: the replicas keep it until --prune.
    master.delete("apps/hello-jar", v1)
    assert gen(engine, "replicate", "--config", str(topology.config)).returncode == 0
    assert all(replica.digest("apps/hello-jar", "1") == v1 for replica in topology.replicas)
    pruned = gen(engine, "replicate", "--config", str(topology.config), "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "2 pruned" in pruned.stdout, pruned.stdout
    assert all(replica.digest("apps/hello-jar", "1") is None for replica in topology.replicas)
    assert_mirrored(topology)


@pytest.mark.parametrize("args, code, message", [
    (["--to", "offline"], EXIT_USER_ERROR, "--to: unknown registry 'offline'"),
    (["--to", "REPLICA", "--repo", "base/["], EXIT_USER_ERROR, "--repo: 'base/[' is not a repository glob: '[' at position 6 is never closed"),
    (["--to", "REPLICA", "--from", "UNREACHABLE"], EXIT_UNAVAILABLE, "--from: master 127.0.0.1:PORT is unreachable: connection refused"),
])
def test_bad_input_gets_one_line(engine: Engine, topology: Topology, args: list[str], code: int, message: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    args = [a.replace("REPLICA", topology.offline.host).replace("UNREACHABLE", dead) for a in args]
    if "--from" not in args:
        args += ["--from", topology.master.host]
    result = gen(engine, "replicate", "--insecure", *args)
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dockerfile-gen: error: {message.replace('127.0.0.1:PORT', dead)}"), lines


def test_replica_with_tls_and_basic_auth(engine: Engine, topology: Topology, tmp_path: Path) -> None:
    """A replica as an online registry is run: HTTPS with its own CA, and htpasswd logins."""
    import base64
    import json
    import warnings

    with warnings.catch_warnings():  # bcrypt hashes for the registry's htpasswd; deprecated, still in 3.11
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    engine.run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
               "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert))
    # 2^4 rounds: the registry checks the hash on every request; the default 2^12 costs ~0.25 s each.
    (tmp_path / "htpasswd").write_text("sync:" + crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)) + "\n")
    secure = RegistryProcess("i13-secure", tmp_path, tls=(cert, key), htpasswd=tmp_path / "htpasswd", login=("sync", "s3cret"))
    secure.start()
    try:
        (tmp_path / "layer").mkdir()
        (tmp_path / "layer" / "hello.txt").write_text("hello\n")
        engine.run("tar", "-C", str(tmp_path / "layer"), "-cf", str(tmp_path / "layer.tar"), ".")
        engine.podman("import", "--quiet", str(tmp_path / "layer.tar"), "localhost/tiny/hello:1")
        engine.podman("push", "--tls-verify=false", "localhost/tiny/hello:1", f"docker://{topology.master.host}/tiny/hello:1")
        auth = {"auths": {secure.host: {"auth": base64.b64encode(b"sync:s3cret").decode()}}}
        (tmp_path / "auth.json").write_text(json.dumps(auth))
        config = tmp_path / "replication.yaml"
        body = (f"registries:\n  master: {{host: '{topology.master.host}', insecure: true}}\n"
                f"  secure: {{host: '{secure.host}', ca_file: cert.pem, authfile: AUTH}}\n"
                "from: master\nto: [secure]\nrepos: ['tiny/*']\n")
        config.write_text(body.replace("AUTH", "wrong.json"))
        (tmp_path / "wrong.json").write_text(json.dumps({"auths": {secure.host: {"auth": base64.b64encode(b"sync:nope").decode()}}}))
        refused = gen(engine, "replicate", "-c", str(config))
        assert refused.returncode == EXIT_INCOMPLETE, refused.stderr
        assert f"replica secure ({secure.host}): refused the credentials; missing 1 image(s): tiny/hello:1" in refused.stderr, refused.stderr

        config.write_text(body.replace("AUTH", "auth.json"))
        first = gen(engine, "replicate", "-c", str(config))
        assert first.returncode == 0, first.stderr
        assert "1 copied" in first.stdout, first.stdout
        assert secure.digest("tiny/hello", "1") == topology.master.digest("tiny/hello", "1") is not None
        again = gen(engine, "replicate", "-c", str(config))
        assert again.returncode == 0 and "1 already there" in again.stdout, again.stdout + again.stderr
    finally:
        secure.stop()


def tiny_image(engine: Engine, tmp_path: Path, content: str) -> str:
    """A one-file image, made locally: nothing is pulled."""
    layer = tmp_path / f"layer-{content}"
    layer.mkdir()
    (layer / "content.txt").write_text(content + "\n")
    engine.run("tar", "-C", str(layer), "-cf", str(layer) + ".tar", ".")
    image = f"localhost/tiny/{content}:1"
    engine.podman("import", "--quiet", str(layer) + ".tar", image)
    return image


def test_prune_deletes_only_what_was_copied_from_the_master(engine: Engine, topology: Topology, tmp_path: Path) -> None:
    """Without --repo every repository is selected; what only a replica has was never the master's to delete."""
    master, offline = topology.master, topology.offline
    image = tiny_image(engine, tmp_path, "replica-only")
    for ref in ("apps/replica-only:1", "apps/hello-jar:hotfix"):  # a repository, and a tag, only the replica has
        engine.podman("push", "--tls-verify=false", image, f"docker://{offline.host}/{ref}")
    local = offline.digest("apps/replica-only", "1")
    flags = ["--from", master.host, "--to", offline.host, "--to", topology.online.host, "--insecure"]
    first = gen(engine, "replicate", *flags, "--prune")  # nothing is gone from the master
    assert first.returncode == 0 and "pruned" not in first.stdout, first.stdout + first.stderr
    assert offline.digest("apps/replica-only", "1") == offline.digest("apps/hello-jar", "hotfix") == local is not None

    gone = master.digest("apps/hello-war", "1")
    assert gone and all(replica.digest("apps/hello-war", "1") == gone for replica in topology.replicas)
    master.delete("apps/hello-war", gone)
    dry = gen(engine, "replicate", *flags, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert all(f"would delete on {r.host}: apps/hello-war:1 ({gone})" in dry.stdout.splitlines() for r in topology.replicas), dry.stdout
    assert "2 manifest(s) would be pruned; nothing was copied or deleted" in dry.stdout, dry.stdout
    assert all(replica.digest("apps/hello-war", "1") == gone for replica in topology.replicas)
    pruned = gen(engine, "replicate", *flags, "--prune")
    assert pruned.returncode == 0 and "2 pruned" in pruned.stdout, pruned.stdout + pruned.stderr
    assert all(replica.digest("apps/hello-war", "1") is None for replica in topology.replicas)
    assert offline.digest("apps/replica-only", "1") == offline.digest("apps/hello-jar", "hotfix") == local


def test_prune_keeps_every_manifest_a_kept_index_names(engine: Engine, topology: Topology, tmp_path: Path) -> None:
    """apps/multi:1 is an index of two images; apps/multi:amd64 names one of them, and goes from the master."""
    master = topology.master
    children = {}
    for arch in ("amd64", "arm64"):
        engine.podman("push", "--tls-verify=false", "--format", "oci", tiny_image(engine, tmp_path, arch),
                      f"docker://{master.host}/apps/multi:{arch}")
        body, media_type = master.manifest("apps/multi", arch)
        children[arch] = {"mediaType": media_type, "digest": master.digest("apps/multi", arch), "size": len(body),
                          "platform": {"architecture": arch, "os": "linux"}}
    index_type = "application/vnd.oci.image.index.v1+json"
    index = master.put_manifest("apps/multi", "1", json.dumps({"schemaVersion": 2, "mediaType": index_type,
                                                               "manifests": list(children.values())}).encode(), index_type)
    amd64 = children["amd64"]["digest"]
    assert gen(engine, "replicate", "--config", str(topology.config)).returncode == 0
    assert all(replica.digest("apps/multi", "1") == index and replica.digest("apps/multi", "amd64") == amd64
               for replica in topology.replicas)

    master.untag("apps/multi", "amd64")  # the tag goes; the index still names its manifest
    assert "apps/multi:amd64" not in master.digests() and master.digest("apps/multi", amd64) == amd64
    pruned = gen(engine, "replicate", "--config", str(topology.config), "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "apps/multi:amd64 kept: its manifest is used by apps/multi:1" in pruned.stderr, pruned.stderr
    for replica in topology.replicas:  # the index is whole on every replica: its amd64 image is still there
        assert replica.digest("apps/multi", "1") == index and replica.digest("apps/multi", amd64) == amd64, replica.name


def test_prune_refuses_an_empty_master_catalog(engine: Engine, topology: Topology) -> None:
    """A master whose catalog comes back empty (here: truly empty) proves nothing gone. Last in the module:
    a prune that trusted it would empty the replica."""
    empty = RegistryProcess("empty", topology.config.parent)
    empty.start()
    try:
        before = topology.offline.digests()
        result = gen(engine, "replicate", "--from", empty.host, "--to", topology.offline.host, "--insecure", "--prune")
        assert result.returncode == EXIT_UNAVAILABLE, result.stdout + result.stderr
        lines = result.stderr.splitlines()
        assert result.stdout == "" and len(lines) == 1, lines
        assert lines[0].startswith(f"dockerfile-gen: error: --prune: refused: the master {empty.host}'s catalog lists no repository"), lines
        assert topology.offline.digests() == before
    finally:
        empty.stop()
