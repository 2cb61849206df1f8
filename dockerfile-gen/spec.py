"""A validated app spec: the frozen records the generator works from. `specfile` reads and checks
one (load_spec); `deploy` holds its Helm-only part and env_overrides.

The shape is documented in docs/dockerfile-gen.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bootstrap.settings import parsers
from dockerfile_gen.appenv import AppEnv
from dockerfile_gen.appuser import Writable
from dockerfile_gen.deploy import Deploy


@dataclass(frozen=True)
class Ready:
    """`ready:` as written (validated by the agent's parse_ready), for bootstrap.yaml: the checks
    the spec sets, in the agent's order (table.READY_CHECK_KEYS), and their timing."""

    checks: tuple[tuple[str, str | int], ...] = ()  # (key, value as bootstrap.yaml carries it)
    timeout: float = parsers.DEFAULT_READY_TIMEOUT
    period: float | None = None  # None: the agent's default

    def check(self, key: str) -> str | int | None:
        return dict(self.checks).get(key)


@dataclass(frozen=True)
class AppSpec:
    path: str  # the spec file, for messages
    context: str  # the spec's directory: the build context
    name: str
    type: str
    java: int | None
    artifact: str | None
    start: tuple[str, ...] | None
    ports: tuple[int, ...]
    config: str  # relative to context
    config_files: tuple[str, ...]  # files under config, relative to it, sorted
    envs: tuple[str, ...]  # the environment directories under config (not common/), sorted
    ready: Ready
    ready_set: bool  # whether the spec wrote `ready` checks (else the type's default applies)
    packages: tuple[str, ...]
    user: str | None
    jvm_options: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    deploy: Deploy
    exit_remap: tuple[tuple[int, int], ...] | None  # None: the type's default
    env_overrides: tuple[tuple[str, str, Deploy], ...] = field(default=())  # (env dir, spec key, entry)
    java_max: int | None = None  # the newest Java major the app may be placed on; None: exactly `java`
    uid: int | None = None  # the spec's `uid:`; None: derived from the name (appuser.derived_uid)
    writable: tuple[Writable, ...] = ()  # the spec's `writable:` directories, emptyDirs in the chart
    env_vars: tuple[tuple[str, str], ...] = ()  # the spec's `env`, sorted: the image's ENV
    reload_action: str | None = None  # the spec's `reload.action` (reloadspec.py); None: the chart's default
    reload_check: tuple[str, ...] | None = None  # the spec's `reload.check`

    @property
    def app_env(self) -> AppEnv:
        """The base container environment: `env` and `jvm_options` (appenv)."""
        return AppEnv(self.env_vars, self.jvm_options)

    def deploy_for(self, env: str) -> tuple[Deploy, str, frozenset[str]]:
        """The env's effective Helm settings, its override's spec key prefix ('' if none) and the
        keys that override writes."""
        for env_dir, raw, override in self.env_overrides:
            if env_dir == env:
                return override.over(self.deploy), f"env_overrides.{raw}.", override.written
        return self.deploy, "", frozenset()
