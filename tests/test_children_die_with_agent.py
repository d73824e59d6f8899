"""A child started for a render dies with the agent, even a kill -9 of the agent (Linux).

Without it a renderer in its own session outlives the killed agent until it
next writes to its closed pipe, and the frame's new owner renders beside it
(issue 14: "the killed agent's renderer still there after 20 s" under load).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from farm import wait_for

pytestmark = [
    pytest.mark.under_load,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"),
]

PARENT = textwrap.dedent("""
    import subprocess, sys, threading
    from envy.platform.processes import popen_kwargs_new_group

    def start():  # from a worker thread, as a render worker does
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                 stdout=subprocess.PIPE, **popen_kwargs_new_group(low_priority=True))
        print(child.pid, flush=True)
        child.wait()

    worker = threading.Thread(target=start)
    worker.start()
    worker.join()
""")


def test_a_child_in_its_own_session_dies_when_its_agent_is_killed_9(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        child = psutil.Process(int(line))
        assert child.is_running() and os.getsid(child.pid) == child.pid  # its own session
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)

        def gone() -> bool:
            return not child.is_running() or child.status() == psutil.STATUS_ZOMBIE

        wait_for(gone, 10, "the child to die with its agent")
    finally:
        if parent.poll() is None:
            parent.kill()
