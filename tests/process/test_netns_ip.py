"""IP detection without POD_IP, inside network namespaces made for the test (veth, 10.200.x.y only).
No traffic is sent: detection reads the route table and interface addresses."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.apptree import app_tree
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_root, require_tool

pytestmark = pytest.mark.process

_counter = itertools.count()


def ip(*args: str) -> None:
    subprocess.run([require_tool("ip"), *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def netns() -> Iterator[Callable[..., str]]:
    """netns(("10.200.0.2/24", default_route), ...) -> the name of a new namespace with one veth per
    address; the host ends get no address. Everything is deleted at teardown."""
    require_root()
    require_tool("ip")
    made: list[tuple[str, list[str]]] = []

    def make(*addresses: tuple[str, bool]) -> str:
        tag = f"{os.getpid() % 100000}x{next(_counter)}"
        name = f"bstest{tag}"
        host_ends: list[str] = []
        made.append((name, host_ends))
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")
        for n, (address, default) in enumerate(addresses):
            host, inner = f"bsh{tag}{n}", f"bsn{tag}{n}"
            ip("link", "add", host, "type", "veth", "peer", "name", inner)
            host_ends.append(host)
            ip("link", "set", inner, "netns", name)
            ip("link", "set", host, "up")
            ip("-n", name, "addr", "add", address, "dev", inner)
            ip("-n", name, "link", "set", inner, "up")
            if default:
                gateway = address.rsplit(".", 1)[0] + ".1"
                ip("-n", name, "route", "add", "default", "via", gateway, "dev", inner)
        return name

    yield make
    for name, host_ends in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        for host in host_ends:  # normally gone with its peer; make sure
            subprocess.run(["ip", "link", "del", host], capture_output=True, timeout=10)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return app_tree(tmp_path, ("dev",), app_name="netapp", app_env="dev", pod_ip=None)  # no POD_IP: detect it


def plan_in(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", name, BOOTSTRAP, "plan", "--json"], env=env,
                          capture_output=True, text=True, timeout=30)


def test_ip_detected_in_network_namespace(netns: Callable[..., str], env: dict[str, str], tmp_path: Path) -> None:
    name = netns(("10.200.0.2/24", False))
    proc = plan_in(name, env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ip"] == "10.200.0.2"
    assert doc["log_dir"].endswith("/netapp/10.200.0.2")
    assert doc["log_dir"] == f"{tmp_path}/logs/netapp/10.200.0.2"


def test_default_route_interface_preferred(netns: Callable[..., str], env: dict[str, str]) -> None:
    """With two interfaces, the one holding the default route is the container's primary IP,
    even when another one comes first."""
    name = netns(("10.200.1.2/24", False), ("10.200.0.2/24", True))
    doc = json.loads(plan_in(name, env).stdout)
    assert doc["ip"] == "10.200.0.2"


def test_pod_ip_wins_in_namespace(netns: Callable[..., str], env: dict[str, str]) -> None:
    name = netns(("10.200.0.2/24", False))
    doc = json.loads(plan_in(name, {**env, "POD_IP": "10.9.9.9"}).stdout)
    assert (doc["ip"], doc["log_dir"].rsplit("/", 2)[1:]) == ("10.9.9.9", ["netapp", "10.9.9.9"])


def test_no_ipv4_is_a_setup_error(netns: Callable[..., str], env: dict[str, str]) -> None:
    name = netns()
    proc = plan_in(name, env)
    assert proc.returncode == 78
    assert proc.stderr.count("bootstrap: error:") == 1 and "POD_IP" in proc.stderr
