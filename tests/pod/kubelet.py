"""The kubelet stand-in is part of the product (`dockerfile_gen.pod.kubelet`, which `dockerfile-gen
pod` runs); this module keeps its old import path for the benchmark."""
from __future__ import annotations

from dockerfile_gen.pod.kubelet import ContainerState, Event, Kubelet, Probe, Runtime

__all__ = ["ContainerState", "Event", "Kubelet", "Probe", "Runtime"]
