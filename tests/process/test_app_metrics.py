"""The app's process-group metrics against real processes that come and go."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bootstrap.helpers import apptree


def test_app_cpu_never_goes_down_when_a_process_leaves(tmp_path: Path) -> None:
    burn = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass\nprint('burned', flush=True)\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"burned\n"
        tree = apptree.AppTree(proc.pid)
        before = tree.sample()
        assert before.processes == 1 and before.cpu >= 0.3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        after = tree.sample()
        assert after.processes == 0 and after.cpu == before.cpu
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
