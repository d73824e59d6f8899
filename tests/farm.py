"""Test harness: a real share in a temp folder and real agent subprocesses.

Waits are conditions with deadlines (``wait_for`` from envy/waiting.py), never
bare sleeps; to show that something did not happen, send a later marker command
and wait for it (``Farm.marker``).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from envy.protocol.sender import InstructionSender
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from envy.waiting import wait_for  # the one wait of Envy; tests import it from here too

# when_in_use keep: someone typing at the developer's machine must not pause every test's
# renders; the NIMBY tests (test_session_agents.py) turn it on.
FAST = {"heartbeat": 0.5, "poll_interval": 0.3, "dead_after": 3, "when_in_use": "keep"}

# Deadlines are upper bounds, not timings: a passing test never waits them out. They are
# sized for a busy machine (CI runs the under_load tests beside stress-ng --cpu 6 --io 2,
# where starting one agent, imports included, took more than 20 s on 2 cores).
BUSY_DEADLINE_S = 60.0


_marker_numbers = itertools.count(1)


def send_marker(sender: InstructionSender, log_of: Callable[[str], str], hosts: Iterable[str],
                timeout: float = 30) -> str:
    """Send ``* print('marker-N')`` and wait until each of ``hosts`` has logged it; returns the text.

    An agent considers the lines of the instruction file in order, in its polling
    loop, so once a host has printed the marker it has seen every earlier line and
    done (or not done) what each asked. That, not a sleep, is how a test shows that
    something did not happen. (NV functions and render workers run on other
    threads: the marker says nothing about them.)
    """
    text = f"marker-{next(_marker_numbers)}"
    sender.send([f"* print('{text}')"])
    waiting = list(hosts)
    wait_for(lambda: all(f"print: {text}" in log_of(h) for h in waiting), timeout,
             f"{', '.join(waiting)} to print {text}")
    return text


class AgentProc:
    def __init__(self, farm: Farm, host: str, popen: subprocess.Popen) -> None:
        self.farm = farm
        self.host = host
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def pause(self) -> None:
        self.popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.popen.send_signal(signal.SIGCONT)

    def wait_exit(self, timeout: float = 15) -> int:
        return self.popen.wait(timeout=timeout)

    def log(self) -> str:
        return self.farm.log(self.host)

    def output(self) -> str:
        path = self.farm.root / f"{self.host}.out"
        return path.read_text(errors="replace") if path.exists() else ""


class Farm:
    def __init__(self, root: Path, user: str = "student", settings: dict | None = None) -> None:
        self.root = root
        self.share = root / "share"
        self.user = user
        self.layout = ShareLayout(self.share)
        # The test's scenes and images live beside the share in its temp folder: a project root
        # (paths outside the share and the project roots are refused, envy/render/confine.py).
        self.settings = {**FAST, "project_roots": [str(root)], **(settings or {})}
        self.env = {
            **os.environ,
            "ENVY_STATE_DIR": str(root / "state"),
            "ENVY_CONFIG_DIR": str(root / "config"),
            "USER": user,
            "LOGNAME": user,
            "USERNAME": user,
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("ENVY_LOG_DIR", None)
        self.env.pop("ENVY_SHARE", None)
        self.env.pop("ENVY_POLICY", None)
        self.agents: list[AgentProc] = []
        init_share(self.share, user, fs=REAL_FS)

    def start_agent(
        self, host: str, share: Path | None = None, extra: Iterable[str] = (), **settings: object
    ) -> AgentProc:
        merged = {**self.settings, **settings}
        argv = [sys.executable, "-m", "envy", "agent", "--share", str(share or self.share), "--host", host]
        for key, value in merged.items():
            argv += ["--set", f"{key}={json.dumps(value)}"]
        argv += list(extra)
        out = open(self.root / f"{host}.out", "ab")
        popen = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        agent = AgentProc(self, host, popen)
        self.agents.append(agent)
        return agent

    def wait_heartbeat(self, agent: AgentProc, timeout: float = BUSY_DEADLINE_S) -> dict:
        """Wait until the agent's status file shows its current pid."""
        def ready() -> dict | None:
            st = self.status(agent.host)
            return st if st and st.get("pid") == agent.pid and st.get("state") != "starting" else None
        return wait_for(ready, timeout, f"{agent.host} to heartbeat")

    def sender(self, lifetime: float = 600) -> InstructionSender:
        return InstructionSender(self.layout, lifetime, fs=REAL_FS)

    def send(self, *lines: str) -> list[str]:
        return [i.id for i in self.sender().send(list(lines)).sent]

    def marker(self, *hosts: str, timeout: float = 30) -> str:
        """Send a marker command and wait for every one of ``hosts`` to run it (see ``send_marker``)."""
        return send_marker(self.sender(), self.log, hosts, timeout)

    def status(self, host: str) -> dict | None:
        try:
            return json.loads(self.layout.status_file(host).read_text())
        except (OSError, ValueError):
            return None

    def log(self, host: str) -> str:
        path = self.layout.host_logs(host) / "agent.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def count_in_log(self, host: str, text: str) -> int:
        return self.log(host).count(text)

    def stop_all(self) -> None:
        for a in self.agents:
            if a.alive():
                try:
                    a.resume()
                    a.popen.terminate()
                    a.popen.wait(timeout=10)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    a.popen.kill()
                    a.popen.wait(timeout=5)
