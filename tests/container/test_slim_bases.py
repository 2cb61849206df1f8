"""The slim bases, built by the session's `tree build` from a clean image store with no registry:
each stays within the budget its tree file sets, the roots are made from the Debian mirror, and on
every jlink'd runtime a heap dump, an hs_err file, a thread dump (SIGQUIT and jcmd) and a TLS
connection to a local server trusted through the system CA store all work."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from dockerfile_gen.tree import load_tree
from tests.podman_engine import BASE_PREFIX, REPO, TREE_IMAGES, Engine, TreeBuild, record

pytestmark = pytest.mark.container
JRES = ("jre-17", "jre-21", "jre-25")
CHECK = """\
import java.net.URL;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.HttpsURLConnection;

public class SlimCheck {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("tls")) {
            HttpsURLConnection c = (HttpsURLConnection) new URL(args[1]).openConnection();
            System.out.println("tls " + c.getResponseCode() + " " + c.getCipherSuite());
        } else if (args[0].equals("oom")) {
            List<byte[]> hog = new ArrayList<>();
            while (true) hog.add(new byte[1 << 20]);
        } else {
            System.out.println("sleeping");
            System.out.flush();
            Thread.sleep(600_000);
        }
    }
}
"""
TLS_SERVER = """\
import http.server, ssl
server = http.server.HTTPServer(("127.0.0.1", 8443), http.server.SimpleHTTPRequestHandler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/w/server.crt", "/w/server.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SlimCheck compiled for Java 17 (it runs on 17, 21 and 25), and an EC test CA that signed a
    certificate for localhost: TLS with ECDHE and ECDSA."""
    work = tmp_path_factory.mktemp("slim")
    (work / "SlimCheck.java").write_text(CHECK)
    subprocess.run(["javac", "--release", "17", "-d", str(work), str(work / "SlimCheck.java")], check=True)
    (work / "tls_server.py").write_text(TLS_SERVER)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=work, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=slim test CA", "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")
    (work / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "server.crt")
    for path in work.iterdir():
        path.chmod(0o644)
    return work


def test_every_base_stays_within_its_budget(built_tree: TreeBuild, engine: Engine) -> None:
    """The budget is the tree's own (size_budget_mb): a team raises it there, on purpose."""
    tree = load_tree(str(REPO / "image-tree"))
    sizes, over = {}, []
    for name in TREE_IMAGES:
        size = json.loads(engine.podman("image", "inspect", f"{BASE_PREFIX}/{name}:1.0.0").stdout)[0]["Size"]
        budget = tree.images[name].image.size_budget_mb
        assert budget is not None, f"{name}: the tree sets no size_budget_mb"
        sizes[name] = round(size / 1e6, 1)
        if size > budget * 1_000_000:
            over.append(f"{name} is {size / 1e6:.1f} MB, over its budget of {budget} MB")
    record("slim_image_sizes_mb", sizes)
    assert not over, "; ".join(over)


def test_roots_are_made_from_the_mirror_without_a_registry(built_tree: TreeBuild, engine: Engine) -> None:
    for root in ("root", "root-trixie"):
        labels = json.loads(engine.podman("image", "inspect", f"{BASE_PREFIX}/{root}:1.0.0").stdout)[0]["Labels"]
        assert labels["org.opencontainers.image.base.name"].startswith("localhost/rootfs/debian-"), labels
    assert re.search(r"^root: (making|importing) localhost/rootfs/debian-bookworm:minbase-", built_tree.log, re.M), built_tree.log
    # Images are made here (localhost/) or pushed by other tests to their loopback registries
    # (127.0.0.1:PORT/); none is pulled from anywhere else.
    names = engine.podman("images", "--format", "{{.Repository}}").stdout.split()
    pulled = [n for n in names if not n.startswith(("localhost/", "127.0.0.1:")) and n != "<none>"]
    assert not pulled, f"pulled from a registry: {pulled}"


def test_the_agent_has_what_it_imports(built_tree: TreeBuild, engine: Engine) -> None:
    """Bytecode is pruned to the agent's imports, and everything it imports is there; the node's
    prune runs; pip is not in the image."""
    for root in ("root", "root-trixie"):
        out = engine.podman("run", "--rm", "--entrypoint", "sh", f"{BASE_PREFIX}/{root}:1.0.0", "-c",
                            "python3 -c 'import bootstrap.cli, bootstrap.helpers.readiness, bootstrap.helpers.metrics, "
                            "bootstrap.helpers.apptree, bootstrap.node.cli, psutil, requests, watchdog.observers, yaml, "
                            "prometheus_client; print(\"imports ok\")' && mkdir -p /tmp/logs && bootstrap logs prune --root /tmp/logs "
                            "&& ! command -v pip && ! python3 -c 'import pip' 2>/dev/null && echo no-pip").stdout
        assert "imports ok" in out and "no-pip" in out, out


@pytest.mark.parametrize("jre", JRES)
def test_heap_dump_hs_err_and_thread_dumps(built_tree: TreeBuild, engine: Engine, work: Path, jre: str) -> None:
    script = (
        # An OutOfMemoryError writes a heap dump; a crash on it writes an hs_err file.
        "java -Xmx24m -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath=/tmp/oom.hprof -cp /w SlimCheck oom >/dev/null 2>&1; "
        "head -c 18 /tmp/oom.hprof; echo; "
        "java -Xmx24m -XX:+CrashOnOutOfMemoryError -XX:ErrorFile=/tmp/hs_err.log -cp /w SlimCheck oom >/dev/null 2>&1; "
        "grep -c 'A fatal error has been detected' /tmp/hs_err.log; "
        # SIGQUIT prints a thread dump on the JVM's stdout; jcmd attaches for another and a heap dump.
        "java -cp /w SlimCheck sleep >/tmp/out.txt 2>&1 & pid=$!; "
        "for i in $(seq 100); do grep -q sleeping /tmp/out.txt && break; sleep 0.1; done; "
        "kill -QUIT $pid; sleep 1; grep -c 'Full thread dump' /tmp/out.txt; "
        "jcmd $pid Thread.print | grep -c '\"main\"'; "
        "jcmd $pid GC.heap_dump /tmp/live.hprof >/dev/null && head -c 18 /tmp/live.hprof; echo; kill $pid"
    )
    out = engine.podman("run", "--rm", "-v", f"{work}:/w:ro", "--entrypoint", "sh", f"{BASE_PREFIX}/{jre}:1.0.0", "-c", script).stdout
    assert out.split("\n")[:5] == ["JAVA PROFILE 1.0.2", "1", "1", "1", "JAVA PROFILE 1.0.2"], out


@pytest.mark.parametrize("jre", JRES)
def test_tls_through_the_system_ca_store(built_tree: TreeBuild, engine: Engine, work: Path, jre: str) -> None:
    """A CA added the Debian way (update-ca-certificates) reaches the runtime's trust store through
    ca-certificates-java; before it, the handshake fails."""
    script = (
        "python3 /w/tls_server.py 2>/dev/null & "
        "for i in $(seq 100); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8443))' 2>/dev/null && break; sleep 0.1; done; "
        "java -cp /w SlimCheck tls https://localhost:8443/ 2>&1 | grep -o 'PKIX path building failed' ; "
        "cp /w/ca.crt /usr/local/share/ca-certificates/slim-test-ca.crt && update-ca-certificates >/dev/null 2>&1; "
        "java -cp /w SlimCheck tls https://localhost:8443/"
    )
    out = engine.podman("run", "--rm", "-v", f"{work}:/w:ro", "--entrypoint", "sh", f"{BASE_PREFIX}/{jre}:1.0.0", "-c", script).stdout
    lines = out.strip().splitlines()
    assert lines[0] == "PKIX path building failed", out
    assert re.fullmatch(r"tls 200 TLS_(AES|CHACHA20)\S+", lines[-1]), out
