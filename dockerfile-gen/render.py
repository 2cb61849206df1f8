"""Rendering: pure functions from resolved data to file contents.

Every user value is validated in `spec`/`tree`; here it is quoted once more for where it lands:
shlex.quote for shell words, JSON for exec-form arrays, Dockerfile double quotes (with `\\`, `"` and
`$` escaped) for ENV and LABEL values. Output is sorted where order carries no meaning and holds no
timestamps, so the same input gives byte-identical files.
"""
from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from bootstrap.settings.parsers import DEFAULT_CONFIG as BOOTSTRAP_CONFIG
from dockerfile_gen.appenv import image_env
from dockerfile_gen import appuser, jlink, reloadspec, rootfs
from dockerfile_gen.choose import Candidate, app_uid, app_user
from dockerfile_gen.kinds import APP_HOME, CONF_SOURCE, KINDS
from dockerfile_gen.spec import AppSpec
from dockerfile_gen.tree import BaseImage, ResolvedImage, Tree

LABEL_NS = "io.k8s-java-bootstrap"
HASH_LABEL = f"{LABEL_NS}.tree-hash"
WHEEL_DIR = "bootstrap-wheel"  # in the root image's build context
AGENT_STAGE = "agent"
DPKG_PATHS = "/etc/dpkg/dpkg.cfg.d/image-tree-paths"  # the root's exclude_paths and keep_paths
PYTHON_DIRS = "/usr/lib/python3 /usr/lib/python3.*"  # Debian's Python directories: bytecode.py prunes these
# Java packages' postinst link their man pages with update-alternatives, which fails without the
# directory even where dpkg leaves the pages out: a root that leaves out paths keeps it, empty.
MAN1 = "mkdir -p /usr/share/man/man1"
ENTRYPOINT = ("bootstrap", "run", "--")
CONT = " \\\n    "


def dq(value: str) -> str:
    """A Dockerfile double-quoted word: ENV/LABEL values, where `$` would otherwise expand."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


# apt's lists, downloads and package caches (40-80 MB) and dpkg's and debconf's backup copies go
# in the same layer that made them. A debootstrap root has no docker-clean hook (the official Debian
# images do), so apt-get would leave them.
APT_LEFTOVERS = ("/var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin "
                 "/var/lib/dpkg/*-old /var/cache/debconf/*-old")


def _apt_install(packages: Iterable[str], before: Iterable[str] = (), after: Iterable[str] = (), mount: str = "") -> list[str]:
    """One RUN: `before`, the install, the clean-up, `after`; `mount` is a RUN --mount option."""
    words = CONT.join(f"    {shlex.quote(p)}" for p in packages)
    steps = [*before, "apt-get update", f"apt-get install -y --no-install-recommends{CONT}{words}", f"rm -rf {APT_LEFTOVERS}", *after]
    return [
        "# Debian versions are pinned by the base image's snapshot, not per package.",
        "# hadolint ignore=DL3008",
        _run(steps, mount),
    ]


def _run(steps: Iterable[str], mount: str = "") -> str:
    return "RUN " + (f"{mount}{CONT}" if mount else "") + CONT.join(f"&& {s}" if i else s for i, s in enumerate(steps))


def _kv_lines(instruction: str, pairs: Iterable[tuple[str, str]]) -> list[str]:
    items = [f"{k}={dq(v)}" for k, v in pairs]
    if not items:
        return []
    return [f"{instruction} " + CONT.join(items)]


# ---------------------------------------------------------------- app outputs


def bootstrap_settings(spec: AppSpec, cand: Candidate) -> dict[str, Any]:
    """The app's bootstrap.yaml, as data (key names: docs/contract.md, "Settings")."""
    kind = KINDS[spec.type]
    servlet = cand.servlet
    settings: dict[str, Any] = {"app_name": spec.name}
    settings["start"] = list(spec.start or kind.start(spec.name, spec.artifact, servlet))
    settings["ready"] = ready_settings(spec)
    # The image's own ids: run as them (the image's USER) there is no switch; the chart's root mode
    # switches to them. The log links go on the run dir's writable mount (appuser.link_path).
    uid = app_uid(spec)
    settings["user"] = f"{uid}:{uid}"
    settings["log_link"] = appuser.link_path("logs")
    settings["drain_seconds"] = kind.drain_seconds if app_ports(spec) else 0
    settings["stop_timeout"] = kind.stop_timeout
    remap = kind.exit_remap if spec.exit_remap is None else spec.exit_remap
    if remap:
        settings["exit_remap"] = ",".join(f"{src}={dst}" for src, dst in remap)
    links = kind.links(spec.config_files, servlet)
    if links:
        settings["links"] = [{"source": link.source, "target": link.target} for link in links]
    log_links = kind.log_links(servlet)
    if log_links:
        settings["log_links"] = [{"path": appuser.link_path(ll.subdir), "subdir": ll.subdir} for ll in log_links]
    settings.update(reloadspec.bootstrap_settings(spec.reload_action, spec.reload_check))
    return settings


def writable_paths(spec: AppSpec, cand: Candidate) -> tuple[str, ...]:
    """The directories the app may write: the spec's `writable:`, and what its servlet container writes."""
    servlet = cand.servlet
    return tuple(w.path for w in spec.writable) + (servlet.writable if servlet else ())


def app_ports(spec: AppSpec) -> tuple[int, ...]:
    return spec.ports or KINDS[spec.type].default_ports


def ready_settings(spec: AppSpec) -> dict[str, Any]:
    ready = spec.ready
    out: dict[str, Any] = {}
    if spec.ready_set and ready.checks:
        out.update(ready.checks)
    elif app_ports(spec):
        out["tcp"] = app_ports(spec)[0]  # listening on the main port is the least a service must do
    out["timeout"] = _number(ready.timeout)
    if ready.period is not None:
        out["period"] = _number(ready.period)
    return out


def _number(seconds: float) -> float | int:
    """Whole seconds as an int (the chart's agent.*Seconds values are integers)."""
    return int(seconds) if float(seconds).is_integer() else seconds


def render_bootstrap_yaml(settings: Mapping[str, Any]) -> str:
    """JSON, which is valid YAML: the agent reads a JSON settings file without importing a YAML
    parser, which would cost PID 1 more start-up time than the interpreter itself."""
    return json.dumps(settings, indent=2, ensure_ascii=False) + "\n"


def render_app_dockerfile(spec: AppSpec, cand: Candidate, base_ref: str, settings_text: str) -> str:
    kind = KINDS[spec.type]
    servlet = cand.servlet
    lines = [
        f"# {spec.name}: generated by dockerfile-gen from its app spec; do not edit.",
        f"# Base {cand.image.name} (cost {cand.cost}). Build context: the spec's directory.",
        f"FROM {base_ref}",
    ]
    if cand.install:
        lines += _apt_install(cand.install)
    uid = app_uid(spec)
    redirects = ((appuser.LOG_LINK, appuser.link_path("logs")),
                 *((ll.path, appuser.link_path(ll.subdir)) for ll in kind.log_links(servlet)))
    lines += appuser.dockerfile_lines(shlex.quote(app_user(spec, servlet)), uid,
                                      (servlet.group,) if servlet and servlet.group else (),
                                      writable_paths(spec, cand), redirects, replace=cand.add_user is None)
    # Layers from the rarest change to the most frequent after the base's: packages and user, the
    # artifact, then the config; a node that has the base pulls only these for a new version.
    if spec.artifact is not None:
        lines.append(f"COPY {spec.artifact} {kind.artifact_target(spec.name, spec.artifact, servlet)}")
    # bootstrap.yaml travels inside the Dockerfile so the build context stays the app's own
    # directory wherever the output goes; it is data, so '$' in it must stay literal.
    words = CONT.join(f"    {shlex.quote(line)}" for line in settings_text.splitlines())
    lines += [
        "# hadolint ignore=SC2016",
        f"RUN mkdir -p /etc/bootstrap{CONT}&& printf '%s\\n'{CONT}{words}{CONT}> {BOOTSTRAP_CONFIG}",
    ]
    lines.append(f"COPY {spec.config}/ {CONF_SOURCE}/")
    lines.append(f"WORKDIR {APP_HOME}")
    lines.append(f"USER {uid}:{uid}")
    # The spec's env, and its JVM options in JAVA_TOOL_OPTIONS: every JVM reads that, whatever the
    # start command, and the agent merges it with its own flags (appenv).
    lines += _kv_lines("ENV", image_env(spec.app_env))
    ports = app_ports(spec)
    if ports:
        lines.append("EXPOSE " + " ".join(str(p) for p in ports))
    labels = [
        ("org.opencontainers.image.title", spec.name),
        ("org.opencontainers.image.base.name", base_ref),
        (f"{LABEL_NS}.base", cand.image.name),
        (f"{LABEL_NS}.type", spec.type),
    ]
    own = {k for k, _ in labels}
    labels += [(k, v) for k, v in spec.labels if k not in own]
    lines += _kv_lines("LABEL", labels)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- tree images


def base_parent_ref(image: ResolvedImage, tree: Tree, prefix: str, root_from: Mapping[str, str]) -> str:
    """The FROM of a tree image: its parent's reference, or for a root its `from` (or the
    override for that root, `tree.root_overrides`), else the root filesystem `tree build` makes
    from the Debian mirror (rootfs.py)."""
    if image.image.parent is None:
        if image.name in root_from:
            return root_from[image.name]
        return image.image.from_ or (rootfs.rootfs_ref(image.image) if image.image.rootfs else "")
    return tree.ref(image.image.parent, prefix)


def _agent_stage(parent_ref: str) -> list[str]:
    """pip installs the agent wheel in a stage of its own, so pip (and what it needs) stays out of
    the image; --no-deps --no-index: the libraries are Debian's, nothing comes from the network."""
    return [
        f"FROM {parent_ref} AS {AGENT_STAGE}",
        *_apt_install(["python3-pip"]),
        f"COPY {WHEEL_DIR}/ /tmp/{WHEEL_DIR}/",
        "RUN pip install --no-cache-dir --no-deps --no-index --break-system-packages --ignore-installed --root /agent"
        f" /tmp/{WHEEL_DIR}/*.whl{CONT}&& ln -sr /agent/usr/local/lib/python3*/dist-packages /agent/site",
        "",
    ]


def _dpkg_paths(base: BaseImage) -> list[str]:
    """The RUN steps that write the root's dpkg path rules (before its first package install)."""
    rules = [f"path-exclude {p}" for p in base.exclude_paths] + [f"path-include {p}" for p in base.keep_paths]
    if not rules:
        return []
    words = CONT.join(f"    {shlex.quote(rule)}" for rule in rules)
    return [f"printf '%s\\n'{CONT}{words}{CONT}> {DPKG_PATHS}", MAN1]


def _base_install(image: ResolvedImage, stage: list[str], agent_digest: str) -> list[str]:
    """The image's install RUN: its runtime package (jlink), its packages, and in a root the dpkg
    path rules first and the agent's bytecode pruning last (bytecode.py). A bind mount's path
    names what it holds (an engine's layer cache keys a RUN by its text only)."""
    base = image.image
    before, after, mount = [], [], ""
    if base.parent is None:
        before = _dpkg_paths(base)
        agent = f"/tmp/agent-{agent_digest[:12]}" if agent_digest else "/tmp/agent"
        mount = f"--mount=type=bind,from={AGENT_STAGE},source=/agent,target={agent}"
        after = [f"PYTHONPATH={agent}/site python3 -m dockerfile_gen.bytecode {agent}/site/bootstrap {PYTHON_DIRS}"]
    if base.jlink is not None:
        mount, first = jlink.install_prefix(stage)
        before = [first]
    if image.own_packages:
        return _apt_install(image.own_packages, before, after, mount)
    steps = [*before, *after]
    return [_run(steps, mount)] if steps else []


def base_layers(image: ResolvedImage) -> tuple[str, ...]:
    """The layers the image adds to its parent (or, for a root, to nothing), in build order, as
    render_base_dockerfile lays them; `tree show` lists them."""
    base = image.image
    layers = []
    if base.parent is None:
        origin = f"debootstrap {base.rootfs.variant} {base.rootfs.suite}" if base.rootfs else f"from {base.from_}"
        layers.append(f"root filesystem ({origin})")
    install = []
    if base.jlink is not None:
        install.append(f"the jlink runtime ({len(base.jlink.modules)} modules)")
    if image.own_packages:
        install.append(f"{len(image.own_packages)} package{'s' if len(image.own_packages) != 1 else ''}")
    if base.parent is None:
        install.append("bytecode pruned to the agent's imports")
    if install:
        layers.append(", ".join(install))
    if base.run:
        layers.append(f"{len(base.run)} run step{'s' if len(base.run) > 1 else ''}")
    if base.parent is None:
        layers.append("the agent")
    return tuple(layers)


def render_base_dockerfile(image: ResolvedImage, tree: Tree, prefix: str, root_from: Mapping[str, str] | None = None,
                           agent_digest: str = "") -> str:
    """A tree image's Dockerfile: build stages (the agent for a root, the JDK for a jlink image),
    then the image's layers: its install RUN, its run steps, for a root the agent, and metadata.
    `agent_digest` (tree build: the wheel's) names the agent in the root's install RUN."""
    base = image.image
    parent_ref = base_parent_ref(image, tree, prefix, root_from or {})
    lines = [
        f"# {base.name}: generated by dockerfile-gen from the image tree; do not edit.",
    ]
    if base.description:
        lines.append(f"# {base.description}")
    stage = _agent_stage(parent_ref) if base.parent is None else []
    if base.jlink is not None:
        stage = jlink.stage_lines(image, parent_ref, _apt_install([base.jlink.jdk]))
    lines += stage
    lines.append(f"FROM {parent_ref}")
    lines += _base_install(image, stage, agent_digest)
    if base.run:
        lines.append("RUN " + CONT.join(f"&& {step}" if i else step for i, step in enumerate(base.run)))
    if base.parent is None:
        lines.append(f"COPY --from={AGENT_STAGE} /agent/usr/local/ /usr/local/")
    lines += _kv_lines("ENV", base.env)
    if base.parent is None:
        lines.append(f"ENTRYPOINT {json.dumps(list(ENTRYPOINT))}")
    labels = [
        ("org.opencontainers.image.title", base.name),
        ("org.opencontainers.image.version", base.version),
        ("org.opencontainers.image.base.name", parent_ref),
        (f"{LABEL_NS}.base", base.name),
    ]
    if base.description:
        labels.append(("org.opencontainers.image.description", base.description))
    own = {k for k, _ in labels}
    labels += [(k, v) for k, v in base.labels if k not in own]
    lines += _kv_lines("LABEL", labels)
    return "\n".join(lines) + "\n"
