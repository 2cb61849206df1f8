"""podman for `dockerfile-gen pod`: one runner for every call, and the kubelet stand-in's view of the
played container (`PodmanRuntime`). Each podman process gets a session of its own, so a Ctrl-C at
the terminal reaches `dockerfile-gen` only, which then finishes the call in progress and stops the
pod in order instead of leaving a half-made one.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dockerfile_gen.errors import EXIT_UNAVAILABLE, GenError
from dockerfile_gen.pod.kubelet import ContainerState


class PodmanError(GenError):
    """A podman call that failed: its command and the last line it wrote."""

    exit_code = 1

    def __init__(self, args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> None:
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()
        super().__init__(f"podman {' '.join(args[:3])} exited {result.returncode}: "
                         f"{said[-1] if said else 'no output'}", "pod")


class Podman:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.env = dict(environ)
        exe = shutil.which("podman", path=self.env.get("PATH"))
        if exe is None:
            raise GenError("podman is not installed (Debian: apt-get install podman catatonit iptables)",
                           "pod").with_exit_code(EXIT_UNAVAILABLE)
        self.exe = exe

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True,
                                    timeout=timeout, check=False, start_new_session=True)
        except subprocess.TimeoutExpired:
            result = subprocess.CompletedProcess([self.exe, *args], 124, "", f"timed out after {timeout:g}s")
        if check and result.returncode != 0:
            raise PodmanError(args, result)
        return result

    def exists(self, kind: str, name: str) -> bool:
        return self.run(kind, "exists", name, check=False, timeout=60).returncode == 0

    def inspect(self, name: str, template: str) -> str:
        return self.run("inspect", "--format", template, name, timeout=60).stdout.strip()

    def json_file(self, container: str, path: str) -> dict[str, Any]:
        """A JSON file inside a running container; {} when it is missing or not JSON yet."""
        result = self.run("exec", container, "cat", path, check=False, timeout=30)
        try:
            data = json.loads(result.stdout) if result.returncode == 0 else {}
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def pod_ip(self, container: str) -> str:
        networks = json.loads(self.inspect(container, "{{json .NetworkSettings.Networks}}") or "{}")
        for net in (networks or {}).values():
            if net.get("IPAddress"):
                return str(net["IPAddress"])
        return ""


def podman_time(text: str) -> float:
    """podman's `2026-11-30 10:21:55.123456789 +0000 UTC` as epoch seconds."""
    date, clock, offset = text.split(" ")[:3]
    whole, _, frac = clock.partition(".")
    stamp = datetime.strptime(f"{date} {whole} {offset}", "%Y-%m-%d %H:%M:%S %z").timestamp()
    return stamp + (float("0." + frac) if frac else 0.0)


class PodmanRuntime:
    """The kubelet stand-in's runtime: the played container, through podman."""

    def __init__(self, podman: Podman, container: str) -> None:
        self.podman = podman
        self.container = container
        self._ip: tuple[str, str] = ("", "")  # (container id, its pod IP)

    def state(self) -> ContainerState:
        out = self.podman.inspect(self.container, "{{.State.Running}} {{.State.StartedAt}}")
        running, started = out.split(" ", 1)
        return ContainerState(container_id=started, running=running == "true", started_at=podman_time(started))

    def address(self) -> str:
        """The pod IP. podman gives a restarted container a new one (the kubelet keeps the pod's)."""
        started = self.state().container_id
        if self._ip[0] != started:
            self._ip = (started, self.podman.pod_ip(self.container))
        return self._ip[1]

    def exec(self, argv: list[str], timeout: float) -> int:
        return self.podman.run("exec", self.container, *argv, check=False, timeout=timeout).returncode

    def kill(self, grace: float) -> None:
        self.podman.run("stop", "-t", str(int(grace)), self.container, check=False, timeout=grace + 60)

    def start(self) -> None:
        self.podman.run("start", self.container, timeout=120)
