"""The log directory: LOG_ROOT/<pattern>, the log links and the .bootstrap.jsonl records, on a real tree."""
from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest

from bootstrap.errors import EX_CONFIG, BootstrapError
from bootstrap.pid1 import logdirs, netinfo
from bootstrap.pid1.actions import apply
from bootstrap.pid1.plan import SetupPlan, make_plan
from bootstrap.settings import resolve
from bootstrap.settings.table import Settings
from tests.support.apptree import app_tree, write_file
from tests.support.prereq import require_root


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return app_tree(tmp_path, ("prod",), app_name="orders", app_env="production", pod_ip="10.1.2.3")


def load(environ: dict[str, str], yaml: str = "") -> Settings:
    Path(environ["BOOTSTRAP_CONFIG"]).write_text(yaml)
    return resolve.load(environ)


def run_setup(environ: dict[str, str], yaml: str = "") -> SetupPlan:
    plan = make_plan(load(environ, yaml))
    apply(plan.actions)
    return plan


def setup_error(environ: dict[str, str], yaml: str = "") -> BootstrapError:
    s = load(environ, yaml)
    with pytest.raises(BootstrapError) as info:
        make_plan(s)
    assert info.value.code == EX_CONFIG
    return info.value


def test_default_pattern_app_and_pod_ip(environ: dict[str, str], tmp_path: Path) -> None:
    plan = run_setup(environ)
    assert plan.ip == "10.1.2.3"
    assert plan.log_dir == f"{tmp_path}/logs/orders/10.1.2.3"
    assert Path(plan.log_dir).is_dir()
    assert os.readlink(tmp_path / "app" / "logs") == plan.log_dir
    assert (tmp_path / "run").is_dir()


def test_pod_ip_wins_over_detection() -> None:
    assert netinfo.detect_ip("10.9.8.7") == "10.9.8.7"


def test_detected_ip_is_a_non_loopback_ipv4() -> None:
    ip = netinfo.detect_ip(None)
    socket.inet_aton(ip)
    assert not ip.startswith("127.")


def test_default_route_interface_from_route_table(tmp_path: Path) -> None:
    table = write_file(tmp_path / "route",
                  "Iface\tDestination\tGateway \tFlags\n"
                  "eth1\t0002C80A\t00000000\t0001\n"
                  "eth0\t00000000\t0100C80A\t0003\n")
    assert netinfo.default_route_interface(str(table)) == "eth0"
    assert netinfo.default_route_interface(str(tmp_path / "none")) is None


def test_every_placeholder(environ: dict[str, str], tmp_path: Path) -> None:
    environ.update(BOOTSTRAP_LOG_DIR="{namespace}/{node}/{app}-{env}/{pod}_{hostname}_{ip}",
                   POD_NAME="orders-7d9f", POD_NAMESPACE="shop", NODE_NAME="node-3")
    plan = run_setup(environ)
    host = socket.gethostname()
    assert plan.log_dir == f"{tmp_path}/logs/shop/node-3/orders-prod/orders-7d9f_{host}_10.1.2.3"
    assert Path(plan.log_dir).is_dir()


@pytest.mark.parametrize(("placeholder", "variable"), [
    ("pod", "POD_NAME"), ("namespace", "POD_NAMESPACE"), ("node", "NODE_NAME"),
])
def test_placeholder_without_value(environ: dict[str, str], tmp_path: Path, placeholder: str, variable: str) -> None:
    environ["BOOTSTRAP_LOG_DIR"] = "{app}/{%s}" % placeholder
    message = str(setup_error(environ))
    assert "BOOTSTRAP_LOG_DIR" in message and variable in message and "{%s}" % placeholder in message
    assert os.listdir(tmp_path / "logs") == []


@pytest.mark.parametrize("value", ["a/b", "..", "."])
def test_placeholder_value_must_be_one_component(environ: dict[str, str], value: str) -> None:
    environ.update(BOOTSTRAP_LOG_DIR="{app}/{pod}", POD_NAME=value)
    assert "{pod}" in str(setup_error(environ))


def test_missing_log_root_names_path(environ: dict[str, str], tmp_path: Path) -> None:
    environ["BOOTSTRAP_LOG_ROOT"] = str(tmp_path / "nologs")
    message = str(setup_error(environ))
    assert str(tmp_path / "nologs") in message and "BOOTSTRAP_LOG_ROOT" in message
    assert not (tmp_path / "nologs").exists()


def test_log_root_that_is_a_file(environ: dict[str, str], tmp_path: Path) -> None:
    write_file(tmp_path / "afile", "x")
    environ["BOOTSTRAP_LOG_ROOT"] = str(tmp_path / "afile")
    assert str(tmp_path / "afile") in str(setup_error(environ))


def test_existing_directory_reused_and_appended(environ: dict[str, str], tmp_path: Path) -> None:
    log_dir = tmp_path / "logs" / "orders" / "10.1.2.3"
    write_file(log_dir / "app.log", "line from the previous run\n")
    first = run_setup(environ)
    assert first.log_dir == str(log_dir)
    assert not any(a.path.startswith(str(log_dir)) and a.kind != "link" for a in first.actions)
    with open(Path(first.log_dir) / "app.log", "a") as fh:
        fh.write("line from this run\n")
    run_setup(environ)  # a restart
    assert (log_dir / "app.log").read_text() == "line from the previous run\nline from this run\n"


def test_second_setup_plans_nothing(environ: dict[str, str]) -> None:
    run_setup(environ, "log_links: [{path: var/log/tomcat, subdir: tomcat}]\n")
    assert make_plan(load(environ, "log_links: [{path: var/log/tomcat, subdir: tomcat}]\n")).actions == ()


def test_log_link_real_directory_moved_aside(environ: dict[str, str], tmp_path: Path) -> None:
    shipped = tmp_path / "app" / "logs"
    write_file(shipped / "catalina.out", "shipped in the image\n")
    plan = run_setup(environ)
    assert os.readlink(shipped) == plan.log_dir
    assert (tmp_path / "app" / "logs.orig" / "catalina.out").read_text() == "shipped in the image\n"


def test_log_link_file_moved_aside_orig_n(environ: dict[str, str], tmp_path: Path) -> None:
    write_file(tmp_path / "app" / "logs", "a file\n")
    write_file(tmp_path / "app" / "logs.orig", "taken\n")
    run_setup(environ)
    assert (tmp_path / "app" / "logs.orig").read_text() == "taken\n"
    assert (tmp_path / "app" / "logs.orig.1").read_text() == "a file\n"


def test_log_link_to_previous_ip_replaced(environ: dict[str, str], tmp_path: Path) -> None:
    run_setup(environ)
    environ["POD_IP"] = "10.1.2.4"
    plan = run_setup(environ)
    assert os.readlink(tmp_path / "app" / "logs") == f"{tmp_path}/logs/orders/10.1.2.4"
    assert (tmp_path / "logs" / "orders" / "10.1.2.3").is_dir()  # the old directory is kept
    assert not any(a.kind == "move-aside" for a in plan.actions)


def test_log_link_parents_created(environ: dict[str, str], tmp_path: Path) -> None:
    environ["BOOTSTRAP_LOG_LINK"] = str(tmp_path / "opt" / "deep" / "logs")
    plan = run_setup(environ)
    assert os.readlink(tmp_path / "opt" / "deep" / "logs") == plan.log_dir


def test_log_links(environ: dict[str, str], tmp_path: Path) -> None:
    tomcat = tmp_path / "var" / "log" / "tomcat10"
    write_file(tomcat / "old.log", "old\n")
    yaml = (f"log_links:\n  - {{path: {tomcat}, subdir: tomcat}}\n"
            f"  - {{path: {tmp_path}/var/log/gc, subdir: jvm/gc}}\n")
    plan = run_setup(environ, yaml)
    assert os.readlink(tomcat) == f"{plan.log_dir}/tomcat"
    assert os.readlink(tmp_path / "var" / "log" / "gc") == f"{plan.log_dir}/jvm/gc"
    assert Path(plan.log_dir, "tomcat").is_dir() and Path(plan.log_dir, "jvm", "gc").is_dir()
    assert (tmp_path / "var" / "log" / "tomcat10.orig" / "old.log").read_text() == "old\n"


@pytest.mark.parametrize("subdir", ["../escape", "/abs", ".", "a/../.."])
def test_log_links_subdir_must_stay_inside(environ: dict[str, str], tmp_path: Path, subdir: str) -> None:
    message = str(setup_error(environ, f"log_links: [{{path: {tmp_path}/x, subdir: '{subdir}'}}]\n"))
    assert "log_links" in message and "subdir" in message


def test_append_record_fields(environ: dict[str, str], tmp_path: Path) -> None:
    environ.update(POD_NAME="orders-1", NODE_NAME="node-1", BOOTSTRAP_IMAGE="reg/orders:1.2")
    plan = run_setup(environ)
    s = load(environ)
    logdirs.append_record(plan.log_dir, s, plan.ip, "start", 4321)
    logdirs.append_record(plan.log_dir, s, plan.ip, "exit", 4321, exit_code=0, raw_exit_code=143, cause="stopped")
    lines = Path(plan.log_dir, ".bootstrap.jsonl").read_text().splitlines()
    start, end = (json.loads(line) for line in lines)
    assert start == {"event": "start", "time": start["time"], "app": "orders", "env": "prod", "ip": "10.1.2.3",
                     "pod": "orders-1", "node": "node-1", "image": "reg/orders:1.2", "pid": 4321}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", start["time"])
    assert (end["event"], end["exit_code"], end["raw_exit_code"], end["cause"]) == ("exit", 0, 143, "stopped")
    # a restart appends to the same file
    logdirs.append_record(run_setup(environ).log_dir, s, plan.ip, "start", 99)
    assert len(Path(plan.log_dir, ".bootstrap.jsonl").read_text().splitlines()) == 3


def test_plan_changes_nothing(environ: dict[str, str], tmp_path: Path) -> None:
    write_file(tmp_path / "app" / "logs" / "x.log", "x")
    s = load(environ, f"log_links: [{{path: {tmp_path}/var/log/t, subdir: t}}]\n")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    plan = make_plan(s)
    assert plan.actions
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.process
def test_ownership_follows_numeric_user(environ: dict[str, str], tmp_path: Path) -> None:
    require_root()
    environ.update(BOOTSTRAP_USER="4242:4242", BOOTSTRAP_LOG_DIR="{app}/{env}/{ip}",
                   POD_IP="10.1.2.5")
    (tmp_path / "logs" / "orders").mkdir()  # exists already, e.g. from another container of the app
    plan = run_setup(environ, "log_links: [{path: var/log/t, subdir: t}]\n")
    assert plan.user is not None and (plan.user.uid, plan.user.gid) == (4242, 4242)
    for path in (plan.log_dir, f"{tmp_path}/logs/orders/prod", f"{plan.log_dir}/t"):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (4242, 4242), path
    assert os.stat(tmp_path / "logs").st_uid == 0
    assert os.stat(tmp_path / "run").st_uid == 0  # setup runs as root; only the log dir is the app's


@pytest.mark.process
def test_ownership_follows_user_name(environ: dict[str, str]) -> None:
    require_root()
    import pwd

    nobody = pwd.getpwnam("nobody")
    environ["BOOTSTRAP_USER"] = "nobody"
    plan = run_setup(environ)
    st = os.stat(plan.log_dir)
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)


@pytest.mark.process
def test_reused_log_dir_is_given_to_the_new_user(environ: dict[str, str]) -> None:
    require_root()
    first = run_setup(environ)  # as root
    environ["BOOTSTRAP_USER"] = "4343:4343"
    second = run_setup(environ)
    assert second.log_dir == first.log_dir
    assert (os.stat(second.log_dir).st_uid, os.stat(second.log_dir).st_gid) == (4343, 4343)


def test_unknown_user_name(environ: dict[str, str]) -> None:
    environ["BOOTSTRAP_USER"] = "no-such-user-xyz"
    message = str(setup_error(environ))
    assert "BOOTSTRAP_USER" in message and "no-such-user-xyz" in message
