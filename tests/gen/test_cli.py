"""The command line end to end: app, batch, tree show/render/graph; exit codes; reproducibility."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dockerfile_gen.cli import main
from dockerfile_gen.errors import EXIT_USER_ERROR
from tests.gen.conftest import EXAMPLES, IMAGE_TREE, NOT_BUILT
from tests.support.prereq import require_tool

TREE = ["--tree", str(IMAGE_TREE)]


def read_all(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_app_writes_the_three_files(tmp_path: Path) -> None:
    assert main([*TREE, "-q", "app", str(EXAMPLES / "orders-api" / "app.yaml"), "-o", str(tmp_path), NOT_BUILT]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile", "bootstrap.yaml", "values-dev.yaml", "values-prod.yaml", "values-qa.yaml", "values.yaml"]
    settings = yaml.safe_load((tmp_path / "bootstrap.yaml").read_text())
    # The image's own ids (uid = gid, derived from the name): no switch when run as them.
    assert settings["app_name"] == "orders-api" and settings["user"] == "59926:59926"
    assert settings["ready"] == {"http": "http://127.0.0.1:8081/actuator/health/readiness", "timeout": 180, "period": 10}
    # The image gets exactly the file written beside the Dockerfile.
    assert "> /etc/bootstrap/bootstrap.yaml" in (tmp_path / "Dockerfile").read_text()


def test_values_keys_follow_the_chart_contract(tmp_path: Path) -> None:
    main([*TREE, "-q", "app", str(EXAMPLES / "orders-api" / "app.yaml"), "-o", str(tmp_path), "--tag", "1.2.3", NOT_BUILT])
    values = yaml.safe_load((tmp_path / "values.yaml").read_text())
    assert set(values) == {"app", "image", "ports", "agent"} and values["app"] == {"name": "orders-api"}
    assert values["image"] == {"repository": "localhost/apps/orders-api", "tag": "1.2.3", "uid": 59926, "gid": 59926}
    assert values["ports"][0] == {"name": "http", "containerPort": 8080}
    assert set(values["agent"]) == {"readyTimeoutSeconds", "drainSeconds", "stopTimeoutSeconds"}  # no root mode
    for env in ("dev", "qa", "prod"):
        env_values = yaml.safe_load((tmp_path / f"values-{env}.yaml").read_text())
        assert set(env_values) <= {"app", "replicaCount", "resources", "autoscaling", "ingress"}
        assert env_values["app"] == {"env": env} and env_values["ingress"]["className"] == "traefik"
    prod = yaml.safe_load((tmp_path / "values-prod.yaml").read_text())
    assert prod["autoscaling"]["enabled"] is True


def test_byte_identical_reruns(tmp_path: Path) -> None:
    assert main([*TREE, "-q", "batch", str(EXAMPLES), "-o", str(tmp_path / "a"), "-j", "1", NOT_BUILT]) == 0
    assert main([*TREE, "-q", "batch", str(EXAMPLES), "-o", str(tmp_path / "b"), "-j", "2", NOT_BUILT]) == 0
    first, second = read_all(tmp_path / "a"), read_all(tmp_path / "b")
    assert first == second and len(first) >= 12 * 3


def test_batch_reports_and_keeps_going(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apps = tmp_path / "apps"
    shutil.copytree(EXAMPLES / "hello-jar", apps / "good")
    shutil.copytree(EXAMPLES / "hello-jar", apps / "twin")
    (apps / "bad").mkdir()
    (apps / "bad" / "app.yaml").write_text("name: bad\ntype: jar\njava: 17\nartifact: a.jar\nport: 1\n")
    (apps / "java11").mkdir()
    (apps / "java11" / "app.yaml").write_text("name: j11\ntype: jar\njava: 11\nartifact: a.jar\n")
    (apps / "java11" / "conf.d" / "prod").mkdir(parents=True)
    (apps / "java11" / "conf.d" / "prod" / "a.properties").write_text("a=1\n")
    code = main([*TREE, "-q", "batch", str(apps), "-o", str(tmp_path / "out"), NOT_BUILT])
    out, err = capsys.readouterr()
    assert code == EXIT_USER_ERROR
    assert out.splitlines()[0] == "batch: 4 specs, 1 generated, 3 failed"
    assert "base jre-17: 1" in out
    assert "bad/app.yaml: port: unknown key" in err
    assert "java11/app.yaml: java: no base image" in err
    assert "twin/app.yaml: name: 'hello-jar' is also the name in" in err
    assert (tmp_path / "out" / "good" / "Dockerfile").is_file(), "valid specs are still generated"


def test_examples_all_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TREE, "-q", "batch", str(EXAMPLES), "-o", str(tmp_path), NOT_BUILT]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"batch: {len(list(EXAMPLES.glob('*/app.yaml')))} specs")
    types = {yaml.safe_load(p.read_text())["type"] for p in EXAMPLES.glob("*/app.yaml")}
    javas = {yaml.safe_load(p.read_text()).get("java") for p in EXAMPLES.glob("*/app.yaml")}
    assert types == {"springboot", "jar", "war", "script"} and {8, 11, 17, 21} <= javas
    assert "base jre-21: 1" in out, out
    assert len(list(EXAMPLES.glob("*/app.yaml"))) >= 12


def test_unservable_example_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    """A Java 8 app is never moved to Java 17 silently: with no Java 8 base, the error says what the
    tree lacks and how to fix it."""
    spec = EXAMPLES.parent / "unservable" / "legacy-billing" / "app.yaml"
    assert main([*TREE, "app", str(spec), "--explain", NOT_BUILT]) == 0, "--explain alone reports; it does not fail"
    assert "rejected: needs java 8 (has 17; java_max: 17 would allow it)" in capsys.readouterr().out
    assert main([*TREE, "app", str(spec), "-o", "/nonexistent/never-written", NOT_BUILT]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dockerfile-gen: error: ")
    assert "java: no base image can serve this springboot app, which needs java 8" in err
    assert "(the tree has java 17, 21, 25; add a base with java 8 to the tree, or set java_max in the spec" in err


def test_old_java_examples_say_they_run_newer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every example below Java 17 is placed on 17 only through its java_max, and --explain says so."""
    for path in sorted(EXAMPLES.glob("*/app.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("java") in (8, 11):
            assert doc.get("java_max") == 17, path
            assert main([*TREE, "app", str(path), "--explain", NOT_BUILT]) == 0
            out = capsys.readouterr().out
            assert f"note: this java {doc['java']} app is placed on java 17" in out and "allowed by java_max: 17 in the spec" in out


def test_app_needs_output_or_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TREE, "app", str(EXAMPLES / "hello-jar" / "app.yaml"), NOT_BUILT]) == EXIT_USER_ERROR
    assert "-o DIR is required" in capsys.readouterr().err


def test_bad_tree_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nparent: b\nversion: '1'\n")
    assert main(["--tree", str(tmp_path), "tree", "show"]) == EXIT_USER_ERROR
    assert capsys.readouterr().err == f"dockerfile-gen: error: {tmp_path}/a.yaml: parent: no image named 'b' in the tree (known: a)\n"


def test_stale_env_values_are_removed(tmp_path: Path) -> None:
    (tmp_path / "values-staging.yaml").write_text("old")
    main([*TREE, "-q", "app", str(EXAMPLES / "hello-war" / "app.yaml"), "-o", str(tmp_path), NOT_BUILT])
    assert sorted(p.name for p in tmp_path.glob("values*")) == ["values-prod.yaml", "values-qa.yaml", "values.yaml"]


def test_tree_show_and_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TREE, "tree", "show"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("localhost/base/root:1.0.0") and any(line.startswith("      localhost/base/tomcat10-fonts") for line in shown)
    assert main([*TREE, "-q", "tree", "render", "-o", str(tmp_path), "--root-from", "root=localhost/debian:bookworm",
                 "--root-from", "root-trixie=localhost/debian:trixie"]) == 0
    root = (tmp_path / "root" / "Dockerfile").read_text()
    assert "FROM localhost/debian:bookworm" in root and 'ENTRYPOINT ["bootstrap", "run", "--"]' in root
    trixie = (tmp_path / "root-trixie" / "Dockerfile").read_text()
    assert "FROM localhost/debian:trixie" in trixie and 'ENTRYPOINT ["bootstrap", "run", "--"]' in trixie
    assert "FROM localhost/base/jre-17:1.0.0" in (tmp_path / "tomcat10" / "Dockerfile").read_text()
    assert "FROM localhost/base/jre-21:1.0.0" in (tmp_path / "tomcat10-jre21" / "Dockerfile").read_text()
    assert "FROM localhost/base/root-trixie:1.0.0" in (tmp_path / "jre-25" / "Dockerfile").read_text()


def test_root_from_must_name_the_root_when_there_are_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TREE, "-q", "tree", "render", "-o", str(tmp_path), "--root-from", "localhost/debian:bookworm"]) == EXIT_USER_ERROR
    assert capsys.readouterr().err == (
        "dockerfile-gen: error: --root-from: 'localhost/debian:bookworm' names no root, and the images come from 2 roots "
        "(root, root-trixie): write ROOT=IMAGE, once per root\n")
    assert not any(tmp_path.iterdir()), "nothing is rendered"


def test_graph_dot_and_svg(tmp_path: Path) -> None:
    assert main([*TREE, "tree", "graph", "-o", str(tmp_path / "tree.dot")]) == 0
    dot = (tmp_path / "tree.dot").read_text()
    assert '"jre-17" -> "tomcat10";' in dot and '"root" -> "jre-17";' in dot
    assert '"root-trixie" -> "jre-21";' in dot and '"jre-21" -> "tomcat10-jre21";' in dot
    require_tool("dot")
    assert main([*TREE, "tree", "graph", "-o", str(tmp_path / "tree.svg")]) == 0
    svg = (tmp_path / "tree.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "tomcat10" in svg
    assert main([*TREE, "tree", "graph", "-o", str(tmp_path / "tree.gif")]) == EXIT_USER_ERROR


def test_committed_graph_is_current(tmp_path: Path) -> None:
    """docs/image-tree.svg is the README's picture; regenerate it when the tree changes."""
    require_tool("dot")
    main([*TREE, "tree", "graph", "-o", str(tmp_path / "tree.svg")])
    committed = IMAGE_TREE.parent / "docs" / "image-tree.svg"
    assert committed.read_text() == (tmp_path / "tree.svg").read_text(), "run: dockerfile-gen tree graph -o docs/image-tree.svg"


@pytest.mark.parametrize("app", sorted(p.name for p in EXAMPLES.iterdir() if (p / "app.yaml").exists()))
def test_generated_bootstrap_yaml_is_accepted_by_the_agent(tmp_path: Path, app: str) -> None:
    """One spec drives both sides: the agent's own settings loader must take what the generator wrote,
    in every environment the app's conf.d has."""
    from bootstrap.settings import resolve

    assert main([*TREE, "-q", "app", str(EXAMPLES / app / "app.yaml"), "-o", str(tmp_path), NOT_BUILT]) == 0
    config = yaml.safe_load((EXAMPLES / app / "app.yaml").read_text()).get("config", "conf.d")
    conf = EXAMPLES / app / config
    envs = sorted(d.name for d in conf.iterdir() if d.is_dir() and d.name != "common")
    assert envs and sorted(p.name for p in tmp_path.glob("values-*.yaml")) == [f"values-{env}.yaml" for env in envs]
    home = tmp_path / "home"
    home.mkdir()
    for env in envs:  # APP_ENV as each values file sets it
        app_env = yaml.safe_load((tmp_path / f"values-{env}.yaml").read_text())["app"]["env"]
        environ = {"APP_ENV": app_env, "APP_HOME": str(home), "BOOTSTRAP_CONFIG": str(tmp_path / "bootstrap.yaml"),
                   "BOOTSTRAP_CONF_SOURCE": str(conf)}
        loaded = resolve.load(environ)
        assert loaded.app_name == app and loaded.start and loaded.env == env


@pytest.mark.parametrize("argv, names", [
    (["app", "spec.yaml", "--bogus"], ["unrecognized", "--bogus"]),
    (["app"], ["dockerfile-gen app", "spec"]),
    ([], ["command"]),
    (["tree", "bogus\nforged line"], ["dockerfile-gen tree", "bogus"]),
    (["batch", "apps", "-o", "out", "-j", "many"], ["-j", "many"]),
])
def test_a_bad_command_line_is_one_line_and_exit_64(argv: list[str], names: list[str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*TREE, *argv])
    assert exited.value.code == 64
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dockerfile-gen: error: ") and "--help" in err, err
    assert all(name in err for name in names), err
