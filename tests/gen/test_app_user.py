"""Who a generated app runs as (appuser): a numeric USER of its own, uid = gid, from `uid:` or
derived from the name; root-owned files; `writable:` directories; unique uids in a batch."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockerfile_gen import appuser
from dockerfile_gen.cli import main
from dockerfile_gen.errors import EXIT_USER_ERROR, GenError
from dockerfile_gen.generate import Options, generate
from dockerfile_gen.spec import AppSpec
from dockerfile_gen.tree import Tree
from tests.gen.conftest import EXAMPLES, IMAGE_TREE, NOT_BUILT

JAR: dict[str, Any] = {"name": "h2-server", "type": "jar", "java": 17, "artifact": "h2.jar"}


def test_the_uid_rule_is_stable_and_in_range() -> None:
    uid = appuser.derived_uid("h2-server")
    assert uid == appuser.derived_uid("h2-server")
    assert appuser.UID_BASE <= uid < appuser.UID_BASE + appuser.UID_SPAN
    uids = {appuser.derived_uid(f"app-{n}") for n in range(200)}
    assert len(uids) >= 190 and appuser.LOG_READER_GID not in uids  # collisions are rare, and a batch refuses them


def test_image_has_a_numeric_user_of_its_own_and_root_owned_files(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    spec = write_spec({**JAR, "writable": ["data", {"path": "/var/lib/h2", "sizeLimit": "2Gi"}]})
    files = generate(spec, tree, Options(tag="1")).files
    uid = appuser.derived_uid("h2-server")
    dockerfile = files["Dockerfile"]
    assert f"groupadd --system --gid {uid} app" in dockerfile
    assert f"--uid {uid} --gid {uid}" in dockerfile
    assert f"install -d -o {uid} -g {uid} -m 0750 /run/bootstrap /app/conf /app/data /var/lib/h2" in dockerfile
    assert f"\nUSER {uid}:{uid}\n" in dockerfile
    assert dockerfile.index("COPY") > dockerfile.index("install -d")  # COPY'd files stay root's
    assert "ln -s /run/bootstrap/links/logs /app/logs" in dockerfile
    settings = yaml.safe_load(files["bootstrap.yaml"])
    assert settings["user"] == f"{uid}:{uid}" and settings["log_link"] == "/run/bootstrap/links/logs"
    values = yaml.safe_load(files["values.yaml"])
    assert (values["image"]["uid"], values["image"]["gid"]) == (uid, uid)
    assert values["writable"] == [{"path": "/app/data"}, {"path": "/var/lib/h2", "sizeLimit": "2Gi"}]
    assert "user" not in values["agent"] and "securityContext" not in values


def test_uid_and_a_numeric_user_set_the_number(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    assert write_spec({**JAR, "uid": 31000}).uid == 31000
    spec = write_spec({**JAR, "user": "31001:31001"})
    assert (spec.uid, spec.user) == (31001, None)
    assert "--uid 31001 --gid 31001" in generate(spec, tree, Options(tag="1")).files["Dockerfile"]


@pytest.mark.parametrize("doc, key, message", [
    ({"uid": 0}, "uid", "out of range"),
    ({"uid": 10000}, "uid", "log readers' group"),
    ({"uid": "x"}, "uid", ""),
    ({"user": "1000:2000"}, "user", "group is the number of its uid"),
    ({"user": "1000", "uid": 1001}, "user", "differ"),
    ({"writable": "data"}, "writable", "must be a list"),
    ({"writable": ["../etc"]}, "writable[0]", "without '..'"),
    ({"writable": ["/"]}, "writable[0]", "would hide"),
    ({"writable": ["/app"]}, "writable[0]", "would hide"),
    ({"writable": ["conf"]}, "writable[0]", "overlaps /app/conf"),
    ({"writable": ["/tmp/x"]}, "writable[0]", "overlaps /tmp"),
    ({"writable": ["logs"]}, "writable[0]", "overlaps /app/logs"),
    ({"writable": ["data", "data/x"]}, "writable[1]", "overlaps"),
    ({"writable": [{"path": "data", "sizeLimit": "lots"}]}, "writable[0].sizeLimit", "Kubernetes quantity"),
    ({"writable": [{"size": "1Gi"}]}, "writable[0]", ""),
])
def test_bad_user_keys_are_one_line_naming_the_key(write_spec: Callable[..., AppSpec], doc: dict[str, Any],
                                                   key: str, message: str) -> None:
    with pytest.raises(GenError) as caught:
        write_spec({**JAR, **doc})
    text = str(caught.value)
    assert "\n" not in text and f": {key}" in text and message in text, text


def test_a_batch_refuses_two_apps_with_one_uid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apps = tmp_path / "apps"
    for name, uid in (("first", 30500), ("second", 30500)):
        shutil.copytree(EXAMPLES / "hello-jar", apps / name)
        spec = apps / name / "app.yaml"
        doc = yaml.safe_load(spec.read_text())
        spec.write_text(yaml.safe_dump({**doc, "name": f"hello-{name}", "uid": uid}))
    code = main(["--tree", str(IMAGE_TREE), "-q", "batch", str(apps), "-o", str(tmp_path / "out"), NOT_BUILT])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert "second/app.yaml: uid: 30500 is also the uid of" in err and "first/app.yaml" in err


def test_the_examples_have_distinct_uids(tmp_path: Path) -> None:
    assert main(["--tree", str(IMAGE_TREE), "-q", "batch", str(EXAMPLES), "-o", str(tmp_path), NOT_BUILT]) == 0
    uids = [yaml.safe_load(p.read_text())["image"]["uid"] for p in tmp_path.glob("*/values.yaml")]
    assert len(uids) == len(set(uids)) == len(list(EXAMPLES.glob("*/app.yaml")))
