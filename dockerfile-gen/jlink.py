"""An image's Java runtime made with jlink, as Dockerfile lines (an image with `jlink`).

A build stage FROM the parent installs the Debian JDK package named in `jlink.jdk` (the jmods and
jlink come with it, so nothing but the Debian mirror is needed) and links the runtime:

- only the listed modules, Java debug attributes stripped, no man pages or headers, resources
  zip-compressed (`--compress=2`), and of jdk.localedata only `jlink.locales`;
- a new default CDS archive (`java -Xshare:dump`), so the JVM starts as fast as the JDK's;
- lib/security/cacerts links /etc/ssl/certs/java/cacerts, the Java view of the system CA store
  that ca-certificates-java keeps (the image installs it once the runtime is in place).

The runtime goes into the image as a Debian package built in the stage (`NAME-runtime`), installed
from a bind mount so the .deb itself is in no layer. It sits where Debian's JRE would
(/usr/lib/jvm/java-N-openjdk-ARCH, with /usr/bin links), provides the java-runtime virtual packages
Debian's JRE provides (so tomcat10 and other Java packages install on it without pulling a second
JRE), and conflicts with and replaces Debian's JRE of its major (an image that installs that JRE gets
it in place of the runtime, never beside it).
"""
from __future__ import annotations

import hashlib
import shlex

from dockerfile_gen.tree import ResolvedImage
from dockerfile_gen.tree_slim import Jlink

STAGE = "jdk"
DEB = "/runtime.deb"
JLINK_FLAGS = ("--strip-java-debug-attributes", "--no-man-pages", "--no-header-files", "--compress=2")
CONT = " \\\n    "


def package_name(image: ResolvedImage) -> str:
    return f"{image.name.replace('_', '-')}-runtime"


def provides(major: int) -> str:
    """The virtual packages Debian's openjdk-N-jre-headless provides."""
    names = ["java2-runtime-headless"] + [f"java{v}-runtime-headless" for v in range(5, major + 1)]
    return ", ".join([f"java-runtime-headless (= {major})", *names])


def jlink_argv(spec: Jlink) -> list[str]:
    argv = ["jlink", "--add-modules", ",".join(spec.modules)]
    if spec.locales:
        argv.append("--include-locales=" + ",".join(spec.locales))
    return argv + list(JLINK_FLAGS)


def stage_lines(image: ResolvedImage, parent_ref: str, apt_install: list[str]) -> list[str]:
    """The build stage; `apt_install` is the RUN that installs the JDK package."""
    spec = image.image.jlink
    major = image.java
    assert spec is not None and major is not None
    name = package_name(image)
    control = [
        f"Package: {name}",
        f"Version: $(dpkg-query -W -f '${{Version}}' {spec.jdk})",
        "Architecture: $arch",
        "Maintainer: dockerfile-gen image tree",
        f"Provides: {provides(major)}",
        f"Conflicts: openjdk-{major}-jre-headless",
        f"Replaces: openjdk-{major}-jre-headless",
        f"Description: Java {major} runtime linked with jlink from {spec.jdk}",
        f" Modules: {' '.join(spec.modules)}.",
    ]
    quoted = " ".join(f'"{line}"' if "$" in line else shlex.quote(line) for line in control)
    steps = [
        "arch=$(dpkg --print-architecture)",
        f"home=/usr/lib/jvm/java-{major}-openjdk-$arch",
        f"{' '.join(jlink_argv(spec))} --output \"/runtime$home\"",
        '"/runtime$home/bin/java" -Xshare:dump -version',
        'ln -sfn /etc/ssl/certs/java/cacerts "/runtime$home/lib/security/cacerts"',
        "mkdir -p /runtime/DEBIAN /runtime/usr/bin",
        'for tool in "/runtime$home"/bin/*; do ln -s "$home/bin/${tool##*/}" "/runtime/usr/bin/${tool##*/}"; done',
        f"printf '%s\\n' {quoted} > /runtime/DEBIAN/control",
        f"dpkg-deb --root-owner-group -Znone --build /runtime {DEB}",
    ]
    return [
        f"FROM {parent_ref} AS {STAGE}",
        "# The JDK only links the runtime: this stage never reaches the image.",
        *apt_install,
        f"# {image.name}'s runtime: a new CDS archive, the system CA store, packaged for dpkg.",
        "# hadolint ignore=SC2016",
        "RUN " + CONT.join(f"&& {s}" if i else s for i, s in enumerate(steps)),
        "",
    ]


def install_prefix(stage: list[str]) -> tuple[str, str]:
    """(RUN mount options, first command) that install the runtime package in the image. The
    package's path names a digest of the stage: an engine's layer cache keys a RUN by its text, not
    by what a bind mount holds, and must not reuse another runtime's layer."""
    target = f"/tmp/runtime-{hashlib.sha256(chr(10).join(stage).encode()).hexdigest()[:12]}.deb"
    return f"--mount=type=bind,from={STAGE},source={DEB},target={target}", f"dpkg -i {target}"
