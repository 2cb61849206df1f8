"""The command line. The only module that reads argv, the environment or the working directory."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from dockerfile_gen import build, graph, render, sizes
from dockerfile_gen.registry import config as replication_config
from dockerfile_gen.registry import replicate
from dockerfile_gen.choose import explain
from dockerfile_gen.errors import EXIT_INCOMPLETE, EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_USER_ERROR, GenError
from dockerfile_gen.generate import Options, batch, generate, write_outputs
from dockerfile_gen.specfile import load_spec
from dockerfile_gen.tree import Tree, load_tree, root_overrides

log = logging.getLogger("dockerfile_gen")
# In a source checkout the tree sits beside the package.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one `dockerfile-gen: error:` line and EXIT_USAGE, like
    every other error, instead of a usage block and exit 2. Subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        line = f"dockerfile-gen: error: {self.prog}: {message}; see '{self.prog} --help'"
        self.exit(EXIT_USAGE, " ".join(line.split()) + "\n")


def _root_from_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root-from", action="append", default=[], metavar="[ROOT=]IMAGE",
        help="override a root's FROM image, e.g. root-trixie=localhost/debian:trixie (repeatable; "
             "a bare IMAGE only when the images come from one root)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dockerfile-gen", description="Base-image tree and Dockerfile generator.")
    parser.add_argument("--tree", help="the image tree directory (default: ./image-tree, else the checkout's)")
    parser.add_argument("--base-prefix", default="localhost/base", help="base images are PREFIX/NAME:VERSION (default %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    app = sub.add_parser("app", help="generate one app's Dockerfile, bootstrap.yaml and Helm values")
    app.add_argument("spec")
    app.add_argument("-o", "--output", help="output directory (required unless --explain)")
    app.add_argument("--explain", action="store_true", help="print every candidate base, its cost and why")
    _size_engine_option(app, "--explain prints the chosen base's built size from this engine's store (default: its budget only)")
    _app_options(app)

    bat = sub.add_parser("batch", help="generate every APPS_DIR/*/app.yaml into OUT/*/")
    bat.add_argument("apps_dir")
    bat.add_argument("-o", "--output", required=True)
    bat.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    _app_options(bat)

    tree = sub.add_parser("tree", help="show, render, build or draw the image tree")
    tsub = tree.add_subparsers(dest="tree_command", required=True)
    sho = tsub.add_parser("show", help="list the images, parents first, with what each adds, its layers and size")
    _size_engine_option(sho, "read each built image's size from this engine's store (default: the first of podman, buildah, docker found)")
    rend = tsub.add_parser("render", help="write each base image's Dockerfile to DIR/<name>/")
    rend.add_argument("-o", "--output", required=True)
    _root_from_option(rend)
    bld = tsub.add_parser("build", help="build the images parents-first, skipping unchanged ones")
    bld.add_argument("images", nargs="*", help="only these images (and their ancestors)")
    bld.add_argument("--engine", choices=sorted(build.ENGINES), help="default: the first of podman, buildah, docker found")
    bld.add_argument("--push", metavar="REGISTRY", help="push each image as REGISTRY/NAME:VERSION")
    bld.add_argument("--tls-verify", action=argparse.BooleanOptionalAction, default=True, help="TLS for --push (podman, buildah)")
    _root_from_option(bld)
    bld.add_argument("--wheel", help="the agent wheel to install in the root (default: build one from --source)")
    bld.add_argument("--source", default=_CHECKOUT, help="project source to build the wheel from (default: this checkout)")
    _replicate_after_push(bld)
    bld.add_argument("--rootfs-cache", metavar="DIR",
                     help="keep the root filesystems made from the Debian mirror in DIR, and use them from there")
    bld.add_argument("--apt-sources", choices=("machine", "image"),
                     help="apt sources for the images' package installs: this machine's Debian mirror (its "
                          "/etc/apt sources, or DEBIAN_MIRROR; the default with podman and buildah) or the "
                          "image's own (the default with docker, which cannot mount them)")
    gra = tsub.add_parser("graph", help="draw the tree with graphviz")
    gra.add_argument("-o", "--output", required=True, help="FILE.svg, FILE.png or FILE.dot")
    _root_from_option(gra)
    _size_engine_option(gra, "label each image with its built size from this engine's store (default: its budget only)")

    psh = sub.add_parser("push", help="push a built app image to the master registry (and replicate it)")
    psh.add_argument("image", help="the local image, e.g. localhost/apps/orders:1a2b3c")
    psh.add_argument("dest", help="REGISTRY/REPO:TAG on the master")
    psh.add_argument("--engine", choices=sorted(build.ENGINES), help="default: the first of podman, buildah, docker found")
    psh.add_argument("--tls-verify", action=argparse.BooleanOptionalAction, default=True, help="TLS for the push (podman, buildah)")
    _replicate_after_push(psh)

    rep = sub.add_parser("replicate", help="mirror the master registry's images to every replica",
                         description="Copy every selected tag from the master to each replica by digest (skopeo), "
                                     "skip what a replica already has, verify each copy. Exit 0: all replicas in sync; "
                                     f"{EXIT_USER_ERROR}: bad input; {EXIT_UNAVAILABLE}: the master does not answer; "
                                     f"{EXIT_INCOMPLETE}: a replica is "
                                     "incomplete (run again to finish).")
    rep.add_argument("-c", "--config", metavar="FILE", help="replication.yaml (registries with TLS and credentials, from, to, repos, prune)")
    rep.add_argument("--from", dest="source", metavar="REGISTRY", help="the master: a name from the config, or HOST[:PORT]")
    rep.add_argument("--to", dest="targets", action="append", default=[], metavar="REGISTRY", help="a replica (repeat for each)")
    rep.add_argument("--repo", dest="repos", action="append", default=[], metavar="GLOB",
                     help="only repositories matching GLOB (repeatable; * and ? within a path segment, ** across)")
    rep.add_argument("--insecure", action="store_true", help="registries given as HOST[:PORT] speak plain HTTP")
    rep.add_argument("--prune", action="store_true",
                     help="also delete on the replicas what earlier runs copied there and the master no longer has")
    rep.add_argument("--dry-run", action="store_true", help="print what --prune would delete; copy and delete nothing")
    rep.add_argument("--min-age", metavar="AGE",
                     help="--prune deletes only what has been gone from the master for AGE (e.g. 12h, 7d), "
                          "counted from the first prune that found it gone")
    rep.add_argument("--state", metavar="FILE",
                     help="the record of what was copied, which --prune relies on "
                          "(default: $XDG_STATE_HOME/dockerfile-gen/replication.json)")
    _pod_parser(sub)
    return parser


def _pod_parser(sub: "argparse._SubParsersAction[_Parser]") -> None:
    pod = sub.add_parser("pod", help="run the app's pod on this machine: the chart, podman kube play, the probes",
                         description="Render the chart with the values in OUT_DIR, play it with podman kube play, "
                                     "run the rendered probes as a kubelet would and print each state change; "
                                     "Ctrl-C stops the pod (preStop, TERM, KILL at the grace period) and removes it.")
    pod.add_argument("out_dir", metavar="OUT_DIR", help="the output directory of dockerfile-gen app")
    pod.add_argument("--env", required=True, help="the environment: values-ENV.yaml in OUT_DIR")
    pod.add_argument("--image", help="the local image (default: image.repository:image.tag of values.yaml)")
    pod.add_argument("--until-ready", type=float, metavar="SECONDS",
                     help="exit 0 once ready (the pod is then stopped and removed), 1 with the reason if not in time")
    pod.add_argument("--log-root", help="host directory for the log root (kept; default: a temporary one, removed)")
    pod.add_argument("--network", help="podman network for the pod (default: podman's)")


def _size_engine_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--engine", choices=sorted(build.ENGINES), help=text)


def _sizes(tree: Tree, args: argparse.Namespace, auto: bool) -> dict[str, int | None] | None:
    """Built sizes from the engine's store; None when no engine is asked (or, with `auto`, found).
    graph and --explain ask only with --engine: their output is committed and must not depend on
    what a machine has built."""
    if args.engine is None and not auto:
        return None
    try:
        engine = build.find_engine(args.engine)
    except GenError:
        if args.engine is not None:
            raise
        return None
    return build.image_sizes(tree, engine, args.base_prefix)


def _replicate_after_push(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicate", nargs="?", const="replication.yaml", metavar="FILE",
                        help="after the push, replicate the pushed repositories to the replicas in FILE (default replication.yaml)")
    parser.add_argument("--replicate-to", action="append", default=[], metavar="REGISTRY",
                        help="after the push, replicate the pushed repositories to this replica (repeatable)")


def _app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-missing-artifact", action="store_true",
                        help="accept a spec whose artifact is not built yet (a CI pipeline that builds it before the image)")
    parser.add_argument("--app-prefix", default="localhost/apps", help="Helm image.repository is PREFIX/APP (default %(default)s)")
    parser.add_argument("--tag", help="Helm image.tag (default: a hash of the generated build files)")


def _tree_dir(arg: str | None) -> str:
    if arg:
        return arg
    for candidate in ("image-tree", os.path.join(_CHECKOUT, "image-tree")):
        if os.path.isdir(candidate):
            return candidate
    raise GenError("no image tree found: pass --tree DIR", "--tree")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.command == "replicate":
            return _replicate(args)
        if args.command == "push":
            return _push(args)
        if args.command == "pod":
            return _pod(args)
        return _dispatch(args, load_tree(_tree_dir(args.tree)))
    except GenError as exc:
        print(f"dockerfile-gen: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _dispatch(args: argparse.Namespace, tree: Tree) -> int:
    if args.command == "app":
        return _app(args, tree)
    if args.command == "batch":
        return _batch(args, tree)
    return _tree(args, tree)


def _options(args: argparse.Namespace) -> Options:
    return Options(base_prefix=args.base_prefix, app_prefix=args.app_prefix, tag=args.tag,
                   allow_missing_artifact=args.allow_missing_artifact)


def _app(args: argparse.Namespace, tree: Tree) -> int:
    spec = load_spec(args.spec, allow_missing_artifact=args.allow_missing_artifact)
    if args.explain:
        sys.stdout.write(explain(spec, tree, _sizes(tree, args, auto=False)))
    if args.output is None:
        if not args.explain:
            raise GenError("-o DIR is required (or use --explain alone)", "app")
        return 0
    result = generate(spec, tree, _options(args))
    write_outputs(args.output, result.files)
    log.info("%s: base %s -> %s (%s)", spec.name, result.choice.image.name, args.output, ", ".join(result.files))
    return 0


def _batch(args: argparse.Namespace, tree: Tree) -> int:
    report = batch(args.apps_dir, args.output, tree, _options(args), jobs=max(1, args.jobs))
    for failure in report.failures:
        print(f"dockerfile-gen: error: {failure.error}", file=sys.stderr)
    sys.stdout.write(report.summary())
    return EXIT_USER_ERROR if report.failures else 0


def _tree(args: argparse.Namespace, tree: Tree) -> int:
    root_from = root_overrides(tree, args.root_from, getattr(args, "images", ())) if args.tree_command != "show" else {}
    if args.tree_command == "show":
        sys.stdout.write(show(tree, args.base_prefix, _sizes(tree, args, auto=True)))
    elif args.tree_command == "render":
        for name in tree.order:
            out = os.path.join(args.output, name)
            os.makedirs(out, exist_ok=True)
            text = render.render_base_dockerfile(tree.images[name], tree, args.base_prefix, root_from)
            with open(os.path.join(out, "Dockerfile"), "w", encoding="utf-8") as handle:
                handle.write(text)
        log.info("rendered %d Dockerfiles into %s", len(tree.order), args.output)
    elif args.tree_command == "graph":
        graph.write_graph(tree, args.output, root_from, _sizes(tree, args, auto=False))
    else:
        return _build(args, tree, root_from)
    return 0


def _build(args: argparse.Namespace, tree: Tree, root_from: dict[str, str]) -> int:
    engine = build.find_engine(args.engine)
    replication = None
    if args.push:  # checked before the build, so a bad replication.yaml fails in a second, not after it
        host, _, prefix = args.push.partition("/")
        names = build.selected_images(tree, args.images)
        replication = _replication_after_push(args, host, [f"{prefix}/{n}" if prefix else n for n in names])
    with tempfile.TemporaryDirectory(prefix="agent-wheel-") as wheel_dir:
        wheel = args.wheel or build.build_wheel(args.source, wheel_dir)
        results = build.build_tree(
            tree, engine, args.base_prefix, wheel,
            root_from=root_from, only=args.images, push=args.push, tls_verify=args.tls_verify,
            apt_sources=_apt_sources(args.apt_sources or ("image" if engine.name == "docker" else "machine"), tree),
            rootfs_cache=args.rootfs_cache,
        )
    built = sum(1 for r in results if r.status == "built")
    log.info("tree build: %d built, %d unchanged, %.1fs", built, len(results) - built, sum(r.seconds for r in results))
    return _report(replicate.replicate(replication)) if replication else 0


def _push(args: argparse.Namespace) -> int:
    """Pushes one app image to the master, then (with --replicate) mirrors its repository."""
    host, slash, rest = args.dest.partition("/")
    repo = rest.rsplit("@", 1)[0]
    repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
    if not slash or not repo or not replication_config.HOST.fullmatch(host) or not replication_config.looks_like_host(host):
        raise GenError(f"{args.dest!r} is not REGISTRY/REPO:TAG (e.g. registry.offline:5000/apps/orders:1.2.0)", "push")
    replication = _replication_after_push(args, host, [repo])
    engine = build.find_engine(args.engine)
    build.push_image(engine, args.image, args.dest, args.tls_verify)
    log.info("pushed %s to %s", args.image, args.dest)
    return _report(replicate.replicate(replication)) if replication else 0


def _pod(args: argparse.Namespace) -> int:
    from dockerfile_gen.pod import command  # the pod's modules (and helm-python-sdk) only for `pod`

    options = command.PodOptions(out_dir=Path(args.out_dir), env=args.env, image=args.image,
                                 until_ready=args.until_ready, network=args.network,
                                 log_root=Path(args.log_root).absolute() if args.log_root else None)
    command.check_options(options)
    return command.run(options, os.environ)


def _replication_after_push(args: argparse.Namespace, host: str, repos: Sequence[str]) -> replication_config.Replication | None:
    """Replication right after a push: from the registry just pushed to, of the repositories just pushed."""
    if args.replicate is None and not args.replicate_to:
        return None
    return replication_config.build(args.replicate, None, args.replicate_to, repos,
                                    insecure=not args.tls_verify, prune=False, source_host=host, state=_state_file())


def _replicate(args: argparse.Namespace) -> int:
    if args.config is None and os.path.isfile("replication.yaml") and not args.source:
        args.config = "replication.yaml"
    config = replication_config.build(args.config, args.source, args.targets, args.repos, args.insecure, args.prune,
                                      state=args.state or _state_file(), dry_run=args.dry_run, min_age=args.min_age)
    return _report(replicate.replicate(config))


def _state_file() -> str:
    """Where replicate records what it copied: under $XDG_STATE_HOME, else ~/.local/state (its default)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is to be ignored
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "dockerfile-gen", "replication.json")


def _report(report: replicate.Report) -> int:
    for line in report.failures():
        print(f"dockerfile-gen: error: {line}", file=sys.stderr)
    sys.stdout.write(report.summary())
    return 0 if report.complete else EXIT_INCOMPLETE


def _apt_sources(choice: str, tree: Tree) -> dict[str, str] | None:
    """Per root, the machine's Debian entries for that root's release (provides.os, e.g. debian-12)."""
    from dockerfile_gen import apt_sources

    if choice == "image":
        return None
    found = {}
    for root in tree.roots:
        codename = apt_sources.CODENAMES.get(str(tree.images[root].provides.get("os", "")))
        sources = apt_sources.sources_list(codename) if codename else None
        if sources is None:
            log.info("tree build: no Debian archive for %s in this machine's apt sources; its images use their own", root)
        else:
            found[root] = sources
    return found


def show(tree: Tree, prefix: str, built: dict[str, int | None] | None = None) -> str:
    """Per image: its reference, what it provides, its packages and size, and under it the layers
    it adds to its parent (an app built on it pulls these and its own layers only)."""
    lines = []
    for name in tree.order:
        image = tree.images[name]
        indent = "  " * image.depth
        provides = " ".join(f"{k}={graph.show_value(v)}" for k, v in sorted(image.provides.items()))
        size = sizes.describe((built or {}).get(name), image.image.size_budget_mb, built is not None)
        lines.append(f"{indent}{tree.ref(name, prefix)}  [{provides}]  +{len(image.own_packages)} packages "
                     f"({len(image.packages)} in all)  {size}")
        lines.append(f"{indent}    layers: {'; '.join(render.base_layers(image))}")
    return "\n".join(lines) + "\n"
