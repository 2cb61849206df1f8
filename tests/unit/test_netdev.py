"""The pod's network counters from /proc/net/dev, and their metric families."""
from __future__ import annotations

from pathlib import Path

from bootstrap.helpers import metrics, netdev

SAMPLE = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0
  eth0: 9876543    7000    0    0    0     0          0         0  1234567    5000    0    0    0     0       0          0
 net1:       5       1    0    0    0     0          0         0        7       1    0    0    0     0       0          0
garbage line without a colon
  bad0: x y z
"""


def test_interfaces_without_loopback(tmp_path: Path) -> None:
    path = tmp_path / "dev"
    path.write_text(SAMPLE)
    assert netdev.read(str(path)) == {"eth0": (9876543, 1234567), "net1": (5, 7)}


def test_unreadable_file_is_no_interfaces(tmp_path: Path) -> None:
    assert netdev.read(str(tmp_path / "missing")) == {}


def test_the_real_file_parses() -> None:
    assert all(rx >= 0 and tx >= 0 for rx, tx in netdev.read().values())


def test_metric_families_by_interface() -> None:
    received, sent = metrics.network_families({"eth0": (10, 20), "net1": (1, 2)})
    assert received.name == "bootstrap_network_receive_bytes" and sent.name == "bootstrap_network_transmit_bytes"
    assert [(s.name, s.labels, s.value) for s in received.samples if s.name.endswith("_total")] == [
        ("bootstrap_network_receive_bytes_total", {"interface": "eth0"}, 10.0),
        ("bootstrap_network_receive_bytes_total", {"interface": "net1"}, 1.0)]
    assert [s.value for s in sent.samples if s.name.endswith("_total")] == [20.0, 2.0]
