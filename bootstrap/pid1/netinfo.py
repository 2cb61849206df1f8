"""The container's IP, without sending any traffic: POD_IP, else the default-route interface's
IPv4 (from /proc/net/route), else the first non-loopback interface that has one."""
from __future__ import annotations

import fcntl
import socket
import struct

from bootstrap.errors import BootstrapError

SIOCGIFADDR = 0x8915


def interface_ipv4(name: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None  # no IPv4 address on this interface
    return socket.inet_ntoa(packed[20:24])


def default_route_interface(route_table: str = "/proc/net/route") -> str | None:
    try:
        with open(route_table, encoding="ascii") as fh:
            next(fh, None)  # header
            for line in fh:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    return fields[0]
    except OSError:
        return None
    return None


def detect_ip(pod_ip: str | None) -> str:
    if pod_ip:
        return pod_ip
    names = [name for _, name in socket.if_nameindex() if name != "lo"]
    default = default_route_interface()
    if default in names:
        names.remove(default)
        names.insert(0, default)
    for name in names:
        ip = interface_ipv4(name)
        if ip and not ip.startswith("127."):
            return ip
    raise BootstrapError("cannot find the container's IPv4 address (no non-loopback interface has one); "
                         "set POD_IP, e.g. from the downward API (status.podIP)")
