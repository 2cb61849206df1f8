"""The JVM flags the user already set, found only where the JVM will read them.

- JAVA_TOOL_OPTIONS: HotSpot itself reads it, in every JVM.
- JDK_JAVA_OPTIONS: the `java` launcher (JDK 9+) puts it before the command line's options.
- The command line, a `sh -c "exec java …"` string word by word, and the @argfiles after `java` on it
  (the launcher reads them; so it does in JDK_JAVA_OPTIONS). A file is read only when it is a
  regular one, and only its first READ_LIMIT bytes.
- JAVA_OPTS and CATALINA_OPTS: no JVM reads them. They count only when the command expands them
  (a shell's `$JAVA_OPTS`) or runs a start script that does: Tomcat's catalina.sh, or a `#!` script
  that names the variable (Gradle's and sbt's start scripts, WildFly's standalone.sh).

Standard library only: PID 1 runs this.
"""
from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping

ALWAYS_READ = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS")  # by every JVM; by the `java` launcher (JDK 9+)
SCRIPT_VARS = ("JAVA_OPTS", "CATALINA_OPTS")  # only a shell or a start script passes these to java
LAUNCHERS = {"catalina.sh": SCRIPT_VARS}  # start scripts known to read them, read or not
SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "zsh"})
READ_LIMIT = 256 << 10  # bytes read of an @argfile or a start script
# `java` options whose value is the next word (the main class comes after them)
VALUE_OPTIONS = frozenset({"-cp", "-classpath", "--class-path", "-p", "--module-path", "--upgrade-module-path",
                           "--add-modules", "--limit-modules", "--add-reads", "--add-exports", "--add-opens",
                           "--patch-module", "--source"})
# -X shorthands and the -XX name they set
SHORTHANDS = {"-Xmx": "MaxHeapSize", "-Xms": "InitialHeapSize", "-Xss": "ThreadStackSize", "-Xmn": "NewSize"}


def flag_name(word: str) -> str | None:
    """The name a JVM option sets: -Xmx1g -> MaxHeapSize, -XX:+Foo / -XX:Foo=1 -> Foo,
    -Xlog:gc*… / -Xloggc:… / -verbose:gc -> Xlog:gc. None for anything else."""
    if word.startswith("-XX:"):
        body = word[4:]
        body = body[1:] if body[:1] in "+-" else body
        return body.partition("=")[0] or None
    for prefix, name in SHORTHANDS.items():
        if word.startswith(prefix) and len(word) > len(prefix):
            return name
    if word.startswith("-Xloggc:") or word == "-verbose:gc":
        return "Xlog:gc"
    if word.startswith("-Xlog:"):
        selectors = word[6:].partition(":")[0]
        if any(s.split("*")[0].split("=")[0].split("+")[0] == "gc" for s in selectors.split(",")):
            return "Xlog:gc"
        return "Xlog:" + selectors
    return None


def _head(path: str, magic: bytes = b"") -> str:
    """Up to READ_LIMIT bytes of a regular file that starts with `magic`; "" for anything else (a
    FIFO would block PID 1)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.pread(fd, len(magic), 0) != magic:
            return ""
        return os.read(fd, READ_LIMIT).decode(errors="replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def _which(name: str, environ: Mapping[str, str]) -> str | None:
    if "/" in name:
        return name
    for directory in environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory or ".", name)
        if os.path.isfile(path):
            return path
    return None


def _vars_read(words: list[str], environ: Mapping[str, str]) -> set[str]:
    """Which of SCRIPT_VARS reach a JVM: one a shell expands on the command line, or one a start
    script the command runs reads (a known launcher, or a #! script that names it)."""
    text = " ".join(words)
    read = {var for var in SCRIPT_VARS if re.search(rf"\$\{{?{var}\b", text)}
    scripts = [_which(words[0], environ)] if words else []
    if words and os.path.basename(words[0]) in SHELLS and len(words) > 1 and words[1][:1] != "-":
        scripts.append(words[1])  # `sh start.sh`
    scripts += [w for w in words[1:] if "/" in w and w[:1] not in "-@$"]
    for path in scripts[:4]:
        if path:
            read.update(LAUNCHERS.get(os.path.basename(path), ()))
            body = _head(path, b"#!")
            read.update(var for var in SCRIPT_VARS if re.search(rf"\b{var}\b", body))
    return read


def _argfile_words(text: str) -> list[str]:
    """A java @argfile's words: split at whitespace, quotes dropped, `#` lines are comments."""
    return [w.strip("'\"") for line in text.splitlines() if not line.lstrip().startswith("#") for w in line.split()]


def read_sources(environ: Mapping[str, str], command: tuple[str, ...]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(where, its words) for every place the JVM reads flags from, and the variables of
    SCRIPT_VARS that are set but never reach it. A command such as `sh -c "exec java -Xmx1g …"` is
    searched word by word; @argfiles after `java` (or in the launcher's variables) are read."""
    words = [w.strip("'\"") for w in " ".join(command).split()]
    read = _vars_read(words, environ)
    sources: list[tuple[str, list[str]]] = []
    unread = []
    for var in (*ALWAYS_READ, *SCRIPT_VARS):
        if var in read or var in ALWAYS_READ:
            sources.append((var, environ.get(var, "").split()))
        elif environ.get(var, "").strip():
            unread.append(var)
    sources.append(("the command", words))
    argfiles = [w for _, given in sources[1:-1] for w in given if _is_argfile(w)] + _java_argfiles(words)
    sources += [(word, _argfile_words(_head(word[1:]))) for word in argfiles]
    return sources, unread


def _is_argfile(word: str) -> bool:
    return word[:1] == "@" and word[1:2] not in ("", "@")  # @@x is the launcher's escape for "@x"


def _java_argfiles(words: list[str]) -> list[str]:
    """The @argfiles the `java` launcher expands in a command: after `java`, before the main class
    (or -jar's jar, or -m's module); an @word after it is the app's own argument."""
    found, state = [], "before"  # before `java` | options | value (of the option before) | app
    for word in words:
        if os.path.basename(word) == "java":
            state = "options"
        elif state == "value":
            state = "options"
        elif state == "options":
            if _is_argfile(word):
                found.append(word)
            elif word in VALUE_OPTIONS:
                state = "value"
            elif word in ("-jar", "-m", "--module") or word.startswith("--module=") or word[:1] not in "-$":
                # the main class, jar or module; a $VARIABLE (a shell's $JAVA_OPTS) is more options
                state = "app"
    return found


def user_flags(environ: Mapping[str, str], command: tuple[str, ...]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Name -> (the word as given, where it was set), the first one winning; and the variables of
    SCRIPT_VARS that are set but never reach the JVM."""
    found: dict[str, tuple[str, str]] = {}
    sources, unread = read_sources(environ, command)
    for where, given in sources:
        for word in given:
            word = word.strip("'\"")
            name = flag_name(word)
            if name and name not in found:
                found[name] = (word, where)
    return found, unread


def value(word: str) -> str:
    """The value of -XX:Name=VALUE or of an -X shorthand (-Xmx1g -> 1g)."""
    if word.startswith("-XX:"):
        return word.partition("=")[2]
    for prefix in SHORTHANDS:
        if word.startswith(prefix):
            return word[len(prefix):]
    return ""
