"""What each app `type` needs and how it starts: a plain dict registry, typed by a Protocol.

Adding a type means adding one entry to KINDS. Servlet containers are data too (SERVLETS), keyed by
the value a tree image gives in `provides.servlet`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bootstrap.settings import table
from bootstrap.settings.parsers import Link, LogLink  # the entries of bootstrap.yaml's links: and log_links:

# The image layout is the agent's default one, so the image needs no settings to find it.
APP_HOME: str = table.setting_row("app_home").default
CONF_SOURCE = f"{APP_HOME}/{table.setting_row('conf_source').default}"  # where conf.d/ is copied
CONF_DIR = f"{APP_HOME}/{table.setting_row('conf_target').default}"  # where the agent links the active env
# The Java majors an app may ask for and a tree image may provide (Debian ships 17 in bookworm,
# 21 and 25 in trixie; 8 and 11 are here for specs of older apps and for trees that add them).
JAVA_VERSIONS = (8, 11, 17, 21, 25)


@dataclass(frozen=True)
class Servlet:
    webapps: str
    conf: str  # files under conf.d/<env>/tomcat/ are linked over this directory's
    logs: str
    start: tuple[str, ...]
    user: str
    group: str = ""  # its files pass to the app's group: the container's config files are readable by it
    writable: tuple[str, ...] = ()  # what the container writes besides its logs (emptyDirs in the chart)
    unpacks: bool = False  # it unpacks the WAR into webapps/ at start: the root filesystem stays writable


SERVLETS: dict[str, Servlet] = {
    # Debian's tomcat10: CATALINA_BASE=/var/lib/tomcat10, whose conf/ and logs/ point at /etc and /var/log.
    "tomcat10": Servlet(
        webapps="/var/lib/tomcat10/webapps",
        conf="/var/lib/tomcat10/conf",
        logs="/var/log/tomcat10",
        start=("/usr/share/tomcat10/bin/catalina.sh", "run"),
        user="tomcat",
        group="tomcat",  # Debian's /etc/tomcat10 files are root:tomcat 0640
        writable=("/var/cache/tomcat10",),  # CATALINA_BASE/work
        unpacks=True,
    ),
}


class Kind(Protocol):
    """One app type. `servlet` is the base's servlet container, when it has one."""

    # Read-only properties, so that frozen dataclasses satisfy the protocol.
    @property
    def needs_servlet(self) -> bool: ...

    @property
    def default_ports(self) -> tuple[int, ...]: ...

    @property
    def drain_seconds(self) -> int: ...

    @property
    def stop_timeout(self) -> int: ...

    @property
    def exit_remap(self) -> tuple[tuple[int, int], ...]: ...

    def artifact_target(self, name: str, artifact: str, servlet: Servlet | None) -> str: ...

    def start(self, name: str, artifact: str | None, servlet: Servlet | None) -> tuple[str, ...]: ...

    def links(self, config_files: tuple[str, ...], servlet: Servlet | None) -> tuple[Link, ...]: ...

    def log_links(self, servlet: Servlet | None) -> tuple[LogLink, ...]: ...


# A JVM runs its shutdown hooks on SIGTERM and then exits 143 (128 + 15): for a JVM that is the
# graceful stop, not a failure, so every rollout would otherwise record failed containers.
JVM_EXIT_REMAP = ((143, 0),)


def _java_start(jar: str, extra: str = "") -> tuple[str, ...]:
    # A shell only to expand $JAVA_OPTS; `exec` makes the JVM bootstrap's direct child,
    # so it gets the stop signal itself.
    return ("sh", "-c", f"exec java $JAVA_OPTS -jar {jar}{extra}")


@dataclass(frozen=True)
class JarKind:
    springboot: bool
    needs_servlet: bool = False
    default_ports: tuple[int, ...] = ()
    drain_seconds: int = 5
    stop_timeout: int = 30
    exit_remap: tuple[tuple[int, int], ...] = JVM_EXIT_REMAP

    def artifact_target(self, name: str, artifact: str, servlet: Servlet | None) -> str:
        return f"{APP_HOME}/{name}.jar"

    def start(self, name: str, artifact: str | None, servlet: Servlet | None) -> tuple[str, ...]:
        # Spring Boot reads the linked config directory on top of what the jar bundles.
        extra = f" --spring.config.additional-location=optional:file:{CONF_DIR}/" if self.springboot else ""
        return _java_start(f"{APP_HOME}/{name}.jar", extra)

    def links(self, config_files: tuple[str, ...], servlet: Servlet | None) -> tuple[Link, ...]:
        return ()

    def log_links(self, servlet: Servlet | None) -> tuple[LogLink, ...]:
        return ()


@dataclass(frozen=True)
class WarKind:
    needs_servlet: bool = True
    default_ports: tuple[int, ...] = (8080,)
    drain_seconds: int = 5
    stop_timeout: int = 30
    exit_remap: tuple[tuple[int, int], ...] = JVM_EXIT_REMAP

    def artifact_target(self, name: str, artifact: str, servlet: Servlet | None) -> str:
        assert servlet is not None, "base choice guarantees a servlet container for a WAR"
        return f"{servlet.webapps}/{name}.war"

    def start(self, name: str, artifact: str | None, servlet: Servlet | None) -> tuple[str, ...]:
        assert servlet is not None
        return servlet.start

    def links(self, config_files: tuple[str, ...], servlet: Servlet | None) -> tuple[Link, ...]:
        """conf.d/<env>/tomcat/X overrides the container's own conf/X (server.xml, context.xml …)."""
        if servlet is None:
            return ()
        rels = sorted({f.split("/", 2)[2] for f in config_files if f.count("/") >= 2 and f.split("/", 2)[1] == "tomcat"})
        return tuple(Link(source=f"conf/tomcat/{rel}", target=f"{servlet.conf}/{rel}") for rel in rels)

    def log_links(self, servlet: Servlet | None) -> tuple[LogLink, ...]:
        return (LogLink(path=servlet.logs, subdir="tomcat"),) if servlet else ()


@dataclass(frozen=True)
class ScriptKind:
    needs_servlet: bool = False
    default_ports: tuple[int, ...] = ()
    drain_seconds: int = 0
    stop_timeout: int = 10
    exit_remap: tuple[tuple[int, int], ...] = ()

    def artifact_target(self, name: str, artifact: str, servlet: Servlet | None) -> str:
        return f"{APP_HOME}/{artifact.rsplit('/', 1)[-1]}"

    def start(self, name: str, artifact: str | None, servlet: Servlet | None) -> tuple[str, ...]:
        raise AssertionError("type script always has a start (the spec requires it)")

    def links(self, config_files: tuple[str, ...], servlet: Servlet | None) -> tuple[Link, ...]:
        return ()

    def log_links(self, servlet: Servlet | None) -> tuple[LogLink, ...]:
        return ()


KINDS: dict[str, Kind] = {
    "springboot": JarKind(springboot=True, default_ports=(8080,)),
    "jar": JarKind(springboot=False),
    "war": WarKind(),
    "script": ScriptKind(),
}
