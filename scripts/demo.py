"""`make demo`: one image's start-up in QA, end to end, in a temporary directory.

It builds a sample app tree (conf.d/{common,dev,qa,prod}), shows `bootstrap plan`, then runs
`bootstrap run` (as PID 1 of a new PID namespace when root) on a small HTTP app with a readiness
check, shows the config links, the IP-named log directory, status.json and the app's answer,
and finally stops it with SIGTERM the way the kubelet does.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BOOTSTRAP = str(Path(sys.executable).with_name("bootstrap"))

APP = '''import http.server, logging, pathlib, signal, sys
conf = pathlib.Path("conf/app.properties").read_text()
logging.basicConfig(filename="logs/app.log", level=logging.INFO, format="%(asctime)s %(message)s")
logging.info("starting with %s", conf.strip())
print("sample app: config is", conf.strip(), flush=True)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(conf.encode())
    def log_message(self, fmt, *args):
        logging.info(fmt, *args)
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
def stop(*_):
    logging.info("SIGTERM: finishing requests and exiting")
    print("sample app: stopping gracefully", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
logging.info("listening")
server.serve_forever()
'''


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_tree(root: Path, port: int) -> dict[str, str]:
    home = root / "app"
    for env in ("dev", "qa", "prod"):
        (home / "conf.d" / env).mkdir(parents=True)
        (home / "conf.d" / env / "app.properties").write_text(f"db.url=jdbc:mysql://{env}-db:3306/orders\n")
    (home / "conf.d" / "common").mkdir()
    (home / "conf.d" / "common" / "logback.xml").write_text("<configuration/>\n")
    (home / "conf").mkdir()
    (home / "conf" / "app.properties").write_text("# shipped by the image; moved aside, not lost\n")
    (home / "app.py").write_text(APP)
    (root / "node-logs").mkdir()
    (root / "bootstrap.yaml").write_text(
        f"app_name: orders\nstart: [{sys.executable!r}, app.py, '{port}']\n"
        f"ready:\n  http: http://127.0.0.1:{port}/\n  timeout: 30\n")
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "APP_ENV": "QA", "APP_HOME": str(home),
            "BOOTSTRAP_CONFIG": str(root / "bootstrap.yaml"), "BOOTSTRAP_LOG_ROOT": str(root / "node-logs"),
            "BOOTSTRAP_RUN_DIR": str(root / "run"), "BOOTSTRAP_DRAIN_SECONDS": "1", "POD_NAME": "orders-7d9f"}


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="bootstrap-demo-"))
    port = free_port()
    env = build_tree(root, port)
    home = Path(env["APP_HOME"])
    banner(f"sample app tree in {root} (APP_ENV=QA)")
    subprocess.run(["find", str(root), "-not", "-path", "*/node-logs*"], check=True)

    banner("bootstrap plan (changes nothing)")
    subprocess.run([BOOTSTRAP, "plan"], env=env, check=True)

    as_pid1 = os.geteuid() == 0 and shutil.which("unshare") is not None
    banner("bootstrap run " + ("as PID 1 in a new PID namespace" if as_pid1 else "(not root: as a subreaper)"))
    cmd = [BOOTSTRAP, "run"]
    if as_pid1:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", *cmd]
    proc = subprocess.Popen(cmd, env=env, cwd=home)  # the image's WORKDIR
    ready = root / "run" / "ready"
    deadline = time.monotonic() + 30
    while not ready.exists():  # the demo's only poll: it stands in for the kubelet's readiness probe
        if proc.poll() is not None or time.monotonic() > deadline:
            print("demo: the app did not become ready", file=sys.stderr)
            return 1
        time.sleep(0.05)

    banner("readiness: cat run/ready succeeds; status.json says")
    print((root / "run" / "status.json").read_text().strip())
    banner("config links in APP_HOME/conf")
    subprocess.run(["ls", "-l", str(home / "conf")], check=True)
    banner("the app answers with the QA config")
    print(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode().strip())
    banner("log directory on the node: <log root>/<app>/<container IP>")
    subprocess.run(["ls", "-l", str(home / "logs")], check=True)
    subprocess.run(["find", str(root / "node-logs"), "-type", "f"], check=True)

    banner("SIGTERM, as the kubelet sends it: not ready, 1 s drain, then the app's own graceful stop")
    target = proc.pid
    if as_pid1:
        target = int(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()[0])
    os.kill(target, signal.SIGTERM)
    code = proc.wait(60)
    print(f"bootstrap exited with {code}")
    banner("records in the log directory (.bootstrap.jsonl) and the app's own log")
    for path in sorted((root / "node-logs").rglob("*")):
        if path.is_file():
            print(f"--- {path.relative_to(root)}")
            for line in path.read_text().splitlines():
                print(json.dumps(json.loads(line), sort_keys=True) if path.suffix == ".jsonl" else line)
    print(f"\ndemo tree left in {root}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
