"""What `dockerfile-gen pod` says while the pod runs: each state change the kubelet stand-in takes
(started, ready, not ready, restarted), with the agent's reason from its status.json, and the
agent's own state changes while the app is not ready (read every POLL seconds, with one `podman
exec`, so not while it is ready).
"""
from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from dockerfile_gen.pod.kubelet import FAILURE, SUCCESS, Event
from dockerfile_gen.pod.local import LocalPod

POLL = 2.0  # seconds between reads of the agent's status.json while not ready


class Watch:
    def __init__(self, pod: LocalPod, say: Callable[[str], None]) -> None:
        self.pod, self.say = pod, say
        self.events: queue.Queue[Event] = queue.Queue()
        self.ready = False
        self.agent: tuple[str, str] = ("", "")  # the agent's last (state, detail) said
        self.exited = ""  # the last exit said, so a crash loop is one line per new cause
        self.last: dict[str, Any] = {}  # the agent's last status read: a killed container has none
        self.killing = False  # the stand-in is stopping the container: its exit is no news
        self.next_poll = 0.0

    def hear(self, event: Event) -> None:
        """The kubelet's on_event: from its worker threads, so only queued here."""
        self.events.put(event)

    def step(self, timeout: float) -> dict[str, Any]:
        """Says what happened within `timeout` seconds; returns the agent's status when it was read."""
        try:
            event: Event | None = self.events.get(timeout=timeout)
        except queue.Empty:
            event = None
        while event is not None:
            self.tell(event)
            event = self.events.get_nowait() if not self.events.empty() else None
        if self.ready or time.monotonic() < self.next_poll:
            return {}
        self.next_poll = time.monotonic() + POLL
        return self.poll_agent()

    def tell(self, event: Event) -> None:
        """One line for a state change the kubelet took, with the agent's reason where it has one."""
        kind, result = event.what, event.detail
        if (kind, result) == ("startup", SUCCESS):
            self.say("started: the startup probe passed (the agent runs the app)")
        elif (kind, result) == ("readiness", SUCCESS):
            self.ready = True
            ports = [p["containerPort"] for p in self.pod.rendered.container.get("ports", [])
                     if not str(p.get("name", "")).startswith(("probe-", "agent"))] if self.pod.rendered else []
            where = f"; the app listens on {self.pod.kubelet.runtime.address()}" if self.pod.kubelet else ""
            self.say(f"ready: the readiness probe passed{where}" + (f" (ports {', '.join(map(str, ports))})" if ports else ""))
        elif (kind, result) == ("readiness", FAILURE) and self.ready:
            self.ready = False
            self.say(f"not ready because {self.reason()}")
        elif kind == "killing":
            self.killing, self.agent = True, ("", "")
            if result != "deleted":  # a liveness or startup failure, after its threshold
                self.say(f"restarting the container: the {result} because {self.reason()}")
        elif kind == "restarted":
            self.killing = False
            ended = self.pod.termination_message()
            self.say(f"restarted because the {result} probe failed" + (f"; the container ended with: {ended}" if ended else ""))

    def reason(self) -> str:
        status, says = self.pod.status(), "says"
        if not status:
            status, says = self.last, "said"
        if not status:
            return "the agent has no status yet (setup, or the container is not running)"
        return f"the agent {says} {status.get('state')}: {status.get('detail')}"

    def poll_agent(self) -> dict[str, Any]:
        status = self.pod.status()
        if not status:
            exited = "" if self.killing else self.pod.exited()
            if exited and exited != self.exited:
                self.say(exited)
            self.exited = exited or self.exited
            return status
        self.last = status
        now = (str(status.get("state", "")), str(status.get("detail", "")))
        if now != self.agent and now[0] != "ready":
            self.say(f"agent: {now[0]}: {now[1]}")
        self.agent = now
        return status
