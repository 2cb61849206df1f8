"""One pod on this machine: rendered, made playable, played with `podman kube play`, and removed
again with everything it made (the pod, its containers, the host files), also after a failure
half-way. The stop is the kubelet's: preStop, then SIGTERM, then SIGKILL at the grace period
(kubelet.py), before `podman kube down`.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dockerfile_gen.appuser import RUN_DIR
from dockerfile_gen.errors import GenError
from dockerfile_gen.pod import chart_render, play
from dockerfile_gen.pod.kubelet import Kubelet
from dockerfile_gen.pod.podman import Podman, PodmanRuntime



@dataclass(frozen=True)
class Rendered:
    """What the chart rendered for the pod, and the played copy's files."""

    image: str
    release: str
    deployment: dict[str, Any]  # as rendered: the kubelet stand-in reads probes and named ports here
    playable: play.Playable
    manifest: Path
    configmap_file: Path | None

    @property
    def pod_spec(self) -> dict[str, Any]:
        return play.pod_spec(self.deployment)

    @property
    def container(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.pod_spec["containers"][0]
        return spec

    @property
    def grace(self) -> float:
        return float(self.pod_spec.get("terminationGracePeriodSeconds", 30))

    def env(self, name: str, default: str = "") -> str:
        return next((str(e["value"]) for e in self.container.get("env", []) if e["name"] == name and "value" in e), default)


class LocalPod:
    def __init__(self, podman: Podman, work: Path, say: Callable[[str], None]) -> None:
        self.podman, self.work, self.say = podman, work, say
        self.rendered: Rendered | None = None
        self.played = False
        self.pod = ""  # the pod's name, once played
        self.kubelet: Kubelet | None = None

    @property
    def container(self) -> str:
        return f"{self.pod}-{self.rendered.container['name']}" if self.rendered else ""

    def render(self, out_dir: Path, env: str, image: str | None, log_root: Path) -> Rendered:
        values = chart_render.local_values(out_dir, env, image, log_root)
        image_ref = chart_render.image_of(values)
        if not self.podman.exists("image", image_ref):
            raise GenError(f"image {image_ref} is not in podman's local storage: build it (podman build --format docker "
                           f"-t {image_ref} -f {out_dir}/Dockerfile CONTEXT) or pass --image", "pod")
        release = chart_render.release_name(values)
        objects = {obj.get("kind"): obj for obj in chart_render.render(values, release)}
        deployment, configmap = objects["Deployment"], objects.get("ConfigMap")
        playable = play.playable(deployment, configmap, self.work)
        manifest = self.work / "deployment.yaml"
        manifest.write_text(yaml.safe_dump(playable.deployment, sort_keys=False))
        configmap_file = None
        if configmap is not None:
            configmap_file = self.work / "configmap.yaml"
            configmap_file.write_text(yaml.safe_dump(configmap, sort_keys=False))
        self.rendered = Rendered(image_ref, release, deployment, playable, manifest, configmap_file)
        return self.rendered

    def candidates(self) -> list[str]:
        """The names podman 4.3 gives a Deployment's pod."""
        assert self.rendered is not None
        name = self.rendered.deployment["metadata"]["name"]
        return [f"{name}-pod-0", f"{name}-pod"]

    def clear_leftover(self) -> None:
        """A pod of this name left by a run that was killed: removed if nothing in it runs."""
        for pod in self.candidates():
            if not self.podman.exists("pod", pod):
                continue
            if self.podman.run("pod", "inspect", "--format", "{{.State}}", pod, check=False).stdout.strip() == "Running":
                raise GenError(f"pod {pod} is running (another dockerfile-gen pod of this app and environment?): "
                               f"stop that one, or remove it with podman pod rm -f {pod}", "pod")
            self.podman.run("pod", "rm", "--force", pod, check=False)
            self.say(f"removed the stopped pod {pod} left by an earlier run")

    def play(self, network: str | None) -> None:
        assert self.rendered is not None
        self.clear_leftover()
        args = ["kube", "play"]
        if network:
            args += ["--network", network]
        if self.rendered.configmap_file is not None:
            args += ["--configmap", str(self.rendered.configmap_file)]
        self.played = True  # from here on, a failure still leaves something to remove
        self.podman.run(*args, str(self.rendered.manifest), timeout=600)
        self.pod = next((p for p in self.candidates() if self.podman.exists("pod", p)), "")
        if not self.pod:
            raise GenError(f"podman kube play made no pod named {' or '.join(self.candidates())}", "pod")
        self.kubelet = Kubelet(PodmanRuntime(self.podman, self.container), self.rendered.container, self.rendered.pod_spec)

    def status(self) -> dict[str, Any]:
        """The agent's status.json, read in the container; {} while there is none."""
        run_dir = self.rendered.env("BOOTSTRAP_RUN_DIR", RUN_DIR) if self.rendered else RUN_DIR
        return self.podman.json_file(self.container, f"{run_dir}/status.json") if self.pod else {}

    def termination_message(self) -> str:
        try:
            return self.rendered.playable.termination_log.read_text().strip() if self.rendered else ""
        except OSError:
            return ""

    def exited(self) -> str:
        """Why the container is not running, or "" while it runs: its exit code and the termination
        message, else the last line it wrote (a setup error)."""
        if not self.pod:
            return ""
        state = self.podman.run("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", self.container,
                                check=False, timeout=60).stdout.split()
        if len(state) != 2 or state[0] == "true":
            return ""
        why = self.termination_message() or next(iter(self.logs(1)), "")
        return f"the container exited with code {state[1]}" + (f": {why}" if why else "")

    def logs(self, lines: int) -> list[str]:
        if not self.pod:
            return []
        result = self.podman.run("logs", "--tail", str(lines), self.container, check=False, timeout=60)
        return (result.stdout + result.stderr).splitlines()[-lines:]

    def remove(self) -> None:
        """The rendered stop, then everything this pod made; safe to call at any point."""
        if self.kubelet is not None and self.pod:
            self.say(f"stopping: preStop, SIGTERM, SIGKILL after {self.rendered.grace if self.rendered else 0:g}s")
            self.kubelet.delete()
            self.kubelet = None
        if self.played and self.rendered is not None:
            self.podman.run("kube", "down", str(self.rendered.manifest), check=False, timeout=300)
            for pod in self.candidates():  # a play that failed half-way leaves a pod kube down does not know
                if self.podman.exists("pod", pod):
                    self.podman.run("pod", "rm", "--force", pod, check=False, timeout=300)
            self.say(f"removed pod {self.pod or self.candidates()[0]}")
            self.played = False
        shutil.rmtree(self.work, ignore_errors=True)
