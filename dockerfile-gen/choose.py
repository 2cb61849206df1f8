"""Base choice: every tree image is a candidate; hard requirements filter, cost ranks.

Hard requirements (a candidate missing any is rejected, with the reasons):
- Java: the base's Java major is the app's own. A JVM runs older class files, but an app's Java
  major is never changed silently: Java 17 removed APIs (javax.xml.bind and friends) and closed
  the JDK's internals that many Java 8 apps use. The spec's `java_max` allows newer majors up to
  the one named, for apps known to run there;
- a servlet container when the app is a WAR.

Cost, lowest wins: what the app must add on top of the base, plus a little for what it carries in
vain. Weights are in COST so `--explain` and the docs show the same numbers:
- each package the app lists that the base lacks;
- one apt layer when any package must be installed;
- a user to create when the base lacks the app's user (one it has is replaced by the app's own,
  of the app's uid);
- each Java major the base is newer than the app asks for (only within `java_max`);
- each package in the base that the app does not list (image weight; small, only separates
  otherwise equal choices such as jre-17 and jdk-17 for a plain jar).
A tie goes to the more specific (deeper) image, then to the name, so the choice is deterministic.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dockerfile_gen.appuser import ACCOUNT, derived_uid
from dockerfile_gen import sizes as size_text
from dockerfile_gen.errors import GenError
from dockerfile_gen.kinds import KINDS, SERVLETS, Servlet
from dockerfile_gen.spec import AppSpec
from dockerfile_gen.tree import ResolvedImage, Tree

COST = {"package": 10, "apt_layer": 5, "user": 5, "java_major": 10, "weight": 1}


@dataclass(frozen=True)
class Candidate:
    image: ResolvedImage
    missing: tuple[str, ...]  # unmet hard requirements; empty when it qualifies
    cost: int
    install: tuple[str, ...]  # packages the app's Dockerfile installs
    already: tuple[str, ...]  # packages the app lists that the base has
    add_user: str | None
    reasons: tuple[str, ...]  # the cost items, for --explain

    @property
    def qualified(self) -> bool:
        return not self.missing

    @property
    def servlet(self) -> Servlet | None:
        name = self.image.servlet
        return SERVLETS[name] if name else None


def app_user(spec: AppSpec, servlet: Servlet | None) -> str:
    """The account the app's image creates for it (appuser): the spec's `user:`, else `app`. Every
    app has its own, whatever the base (a servlet container's user included)."""
    return spec.user or ACCOUNT


def app_uid(spec: AppSpec) -> int:
    """The app's uid and gid: the spec's `uid:`, else derived from its name (appuser.derived_uid)."""
    return spec.uid if spec.uid is not None else derived_uid(spec.name)


def java_wanted(spec: AppSpec) -> str:
    """The app's Java requirement as the messages spell it: `java 8`, or `java 8 to 17`."""
    if spec.java_max is not None and spec.java_max != spec.java:
        return f"java {spec.java} to {spec.java_max}"
    return f"java {spec.java}"


def evaluate(spec: AppSpec, image: ResolvedImage) -> Candidate:
    missing = []
    if spec.java is not None:
        newest = spec.java_max or spec.java
        if image.java is None:
            missing.append(f"{java_wanted(spec)} (has no java)")
        elif image.java < spec.java:
            missing.append(f"{java_wanted(spec)} (has {image.java})")
        elif image.java > newest:
            hint = f"; java_max: {image.java} would allow it" if spec.java_max is None else ""
            missing.append(f"{java_wanted(spec)} (has {image.java}{hint})")
    if KINDS[spec.type].needs_servlet and image.servlet is None:
        missing.append("a servlet container for a WAR (has none)")
    wanted = set(spec.packages)
    install = tuple(p for p in spec.packages if p not in image.packages)
    already = tuple(p for p in spec.packages if p in image.packages)
    servlet = SERVLETS[image.servlet] if image.servlet else None
    add_user: str | None = app_user(spec, servlet)
    if add_user in image.users:  # the image replaces it by the app's own (appuser.dockerfile_lines)
        add_user = None
    weight = len(image.packages - wanted)
    items: list[tuple[int, str]] = []
    if already:
        items.append((0, f"has {len(already)} of the app's package(s): {' '.join(already)}"))
    if install:
        items.append((COST["package"] * len(install), f"installs {len(install)} package(s): {' '.join(install)}"))
        items.append((COST["apt_layer"], "adds an apt layer"))
    if add_user:
        items.append((COST["user"], f"creates user {add_user}"))
    if spec.java is not None and image.java is not None and image.java > spec.java:
        gap = image.java - spec.java
        items.append((COST["java_major"] * gap, f"runs java {spec.java} code on java {image.java} (java_max: {spec.java_max})"))
    items.append((COST["weight"] * weight, f"carries {weight} package(s) the app does not list"))
    return Candidate(
        image=image,
        missing=tuple(missing),
        cost=sum(c for c, _ in items),
        install=install,
        already=already,
        add_user=add_user,
        reasons=tuple(f"+{c} {why}" for c, why in items),
    )


def rank(spec: AppSpec, tree: Tree) -> list[Candidate]:
    """Qualified candidates by (cost, deeper first, name), then the rejected ones by name."""
    candidates = [evaluate(spec, tree.images[name]) for name in tree.order]
    good = sorted((c for c in candidates if c.qualified), key=lambda c: (c.cost, -c.image.depth, c.image.name))
    bad = sorted((c for c in candidates if not c.qualified), key=lambda c: c.image.name)
    return good + bad


def choose(spec: AppSpec, tree: Tree) -> Candidate:
    ranked = rank(spec, tree)
    if ranked and ranked[0].qualified:
        return ranked[0]
    raise GenError(_no_base_message(spec, ranked), spec.path, "java" if _no_java(spec, ranked) else "type")


def _no_java(spec: AppSpec, ranked: list[Candidate]) -> bool:
    return spec.java is not None and all(any(m.startswith("java") for m in c.missing) for c in ranked)


def _java_distance(spec: AppSpec, image: ResolvedImage) -> int:
    """How many majors the image's Java is from the app's: the nearest miss is the most useful hint."""
    if spec.java is None:
        return 0
    return abs(image.java - spec.java) if image.java is not None else 100


def _no_base_message(spec: AppSpec, ranked: list[Candidate]) -> str:
    needs = ([java_wanted(spec)] if spec.java is not None else []) + (
        ["a servlet container"] if KINDS[spec.type].needs_servlet else []
    )
    absent = []  # requirements no image in the tree meets, even alone
    if _no_java(spec, ranked):
        javas = sorted({c.image.java for c in ranked if c.image.java is not None})
        has = f"the tree has java {', '.join(map(str, javas))}" if javas else "the tree has no java at all"
        fix = f"add a base with java {spec.java} to the tree"
        if spec.java_max is None and any(j > (spec.java or 0) for j in javas):
            fix += ", or set java_max in the spec if the app is known to run on a newer major"
        absent.append(f"{java_wanted(spec)} ({has}; {fix})")
    if KINDS[spec.type].needs_servlet and all(c.image.servlet is None for c in ranked):
        absent.append("a servlet container (no image sets provides.servlet)")
    closest = sorted(ranked, key=lambda c: (len(c.missing), _java_distance(spec, c.image), -c.image.depth, c.image.name))[:3]
    parts = [f"no base image can serve this {spec.type} app, which needs {' and '.join(needs)}"]
    if absent:
        parts.append(f"no image in the tree provides {' or '.join(absent)}")
    parts.append("closest: " + "; ".join(f"{c.image.name} lacks {', '.join(c.missing)}" for c in closest))
    return "; ".join(parts)


def explain(spec: AppSpec, tree: Tree, sizes: Mapping[str, int | None] | None = None) -> str:
    """The ranking with each candidate's cost items; `sizes` (built sizes from an engine's store)
    adds the chosen base's size to its budget line."""
    ranked = rank(spec, tree)
    head = f"{spec.name}: type {spec.type}" + (f", {java_wanted(spec)}" if spec.java else "")
    if spec.packages:
        head += f", packages {' '.join(spec.packages)}"
    lines = [head, f"{'rank':>4}  {'base':<20} {'cost':>5}  why"]
    winner = ranked[0] if ranked and ranked[0].qualified else None
    for i, cand in enumerate(ranked, 1):
        if cand.qualified:
            verdict = "chosen" if cand is winner else "lost"
            if cand is not winner and winner is not None and cand.cost == winner.cost:
                verdict += " (tie: the more specific image wins)" if cand.image.depth < winner.image.depth else " (tie: by name)"
            lines.append(f"{i:>4}  {cand.image.name:<20} {cand.cost:>5}  {verdict}: {'; '.join(cand.reasons)}")
        else:
            lines.append(f"{'-':>4}  {cand.image.name:<20} {'-':>5}  rejected: needs {'; '.join(cand.missing)}")
    if winner is not None and (sizes is not None or winner.image.image.size_budget_mb is not None):
        name = winner.image.name
        size = size_text.describe((sizes or {}).get(name), winner.image.image.size_budget_mb, sizes is not None)
        lines.append(f"size of {name}: {size}")
    if winner is None:
        lines.append("no base qualifies")
    elif spec.java is not None and winner.image.java is not None and winner.image.java != spec.java:
        lines.append(f"note: this java {spec.java} app is placed on java {winner.image.java} ({winner.image.name}), "
                     f"allowed by java_max: {spec.java_max} in the spec")
    return "\n".join(lines) + "\n"
