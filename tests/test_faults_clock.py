"""Clock skew, for real: agents whose wall clock is 10 minutes ahead or behind (libfaketime).

Each skewed agent runs with libfaketime preloaded (``FAKETIME=+10m`` / ``-10m``). Only the wall
clock is skewed (``FAKETIME_DONT_FAKE_MONOTONIC=1``): clocks drift between
machines, while a monotonic clock is private to its machine and never
compared across them. libfaketime 0.9.10 has two bugs of its own here: faking
the monotonic clock hangs Python's timed waits, and not faking it makes
``time.sleep`` fail with EINVAL (it sleeps to an absolute monotonic deadline
that libfaketime shifts). A ``sitecustomize`` shim in the skewed agent's path
makes ``time.sleep`` wait on an Event instead; nothing else is changed.

Liveness must come from counters seen changing on the observer's own clock
(ENGINEERING §1.5), so skew must not make anyone alive or dead wrongly:
``envy-io status --json`` calls every agent alive, a killed skewed agent is
declared dead after ``dead_after`` (not 10 minutes early or late), and the
frames it held are reclaimed only then. Frames come from the stand-in
renderer of test_faults_standin.py (not a real render).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from envy.protocol.instructions import Instruction, new_id
from envy.render.claims import ItemPattern, sort_listing
from envy.render.profiles import load_profiles
from envy.render.submit import SubmitRequest, submit
from envy.share.fs import REAL_FS
from farm import AgentProc, Farm, wait_for
from test_faults_standin import EXTENSION, StandIn

SKEW_S = 600.0
# Fast settings as the other agent tests use; dead_after well above one heartbeat.
HEARTBEAT = 0.5
DEAD_AFTER = 3.0
# A status call or a reclaim scan may land up to this late after the moment it judges.
SLACK = 2.0


def libfaketime() -> str:
    """The libfaketime preload library (the ``faketime`` command's own), or skip (fail in CI)."""
    patterns = ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                "/usr/local/lib/faketime/libfaketime.so.1")
    found = sorted(path for pattern in patterns for path in glob.glob(pattern))
    if not found or shutil.which("faketime") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("faketime is required in CI (apt-get install faketime)")
        pytest.skip("faketime is not installed")
    return found[0]


SLEEP_SHIM = """# Test shim (see tests/test_faults_clock.py): libfaketime breaks time.sleep's absolute deadline.
import threading
import time


def _sleep(seconds):
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


time.sleep = _sleep
"""


def start_skewed(farm: Farm, host: str, offset: str, **settings: object) -> AgentProc:
    """An agent subprocess whose wall clock is shifted by ``offset`` (e.g. "+10m").

    libfaketime is preloaded directly rather than through the ``faketime``
    wrapper, which forks: the agent's pid must be the one we kill.
    """
    merged = {**farm.settings, **settings}
    argv = [sys.executable, "-m", "envy", "agent", "--share", str(farm.share), "--host", host]
    for key, value in merged.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    shim = farm.root / "faketime-shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(SLEEP_SHIM, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(shim), farm.env.get("PYTHONPATH", "")) if p)
    env = {**farm.env, "LD_PRELOAD": libfaketime(), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "PYTHONPATH": path}
    with open(farm.root / f"{host}.out", "ab") as out:
        popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    agent = AgentProc(farm, host, popen)
    farm.agents.append(agent)
    return agent


def agent_clock_offset(status: dict) -> float:
    """How far the agent's wall clock is from ours, from the start time it wrote (by its clock)."""
    return datetime.strptime(status["started"], "%Y-%m-%dT%H:%M:%S%z").timestamp() - time.time()


def envy_io_status(farm: Farm) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-m", "envy_io", "--share", str(farm.share), "status", "--json"],
                          env=farm.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {a["host"]: a["alive"] for a in json.loads(done.stdout)}


def kill_standins(standin: StandIn) -> None:
    """Stand-in renders left running by agents this test killed with SIGKILL."""
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if str(standin.script) in (proc.info["cmdline"] or []):
                proc.kill()


def holding_now(shot: Path) -> set[str]:
    """The hosts that hold a frame of ``shot`` now."""
    return {i.host for i in sort_listing(os.listdir(shot), ItemPattern([EXTENSION])).working}


def test_ten_minutes_of_skew_makes_nobody_dead_or_alive_wrongly(tmp_path: Path) -> None:
    libfaketime()
    standin = StandIn(tmp_path / "standin").install()
    timing = {"heartbeat": HEARTBEAT, "poll_interval": 0.3, "dead_after": DEAD_AFTER}
    farm = Farm(tmp_path / "farm", settings=timing)
    # The same timing for envy-io, which reads the user's config on the share (that
    # file overrides the farm's <share>/config.yaml, and init copies every default into it).
    (farm.layout.user_dir(farm.user) / "config.yaml").write_text("".join(f"{k}: {v}\n" for k, v in timing.items()))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(kill_standins, standin)
        cleanup.callback(farm.stop_all)
        common = standin.settings()
        # Spare workers on the normal agent: a reclaimer takes only as many stale frames as
        # it has idle workers (issue 14), and this test times the reclaim, not a queue.
        normal = farm.start_agent("lab1-01", workers=3, **common)
        ahead = start_skewed(farm, "lab1-02", "+10m", **common)
        behind = start_skewed(farm, "lab1-03", "-10m", **common)
        agents = [normal, ahead, behind]
        statuses = {a.host: farm.wait_heartbeat(a) for a in agents}
        assert abs(agent_clock_offset(statuses["lab1-02"]) - SKEW_S) < 5, "faketime did not skew the agent ahead"
        assert abs(agent_clock_offset(statuses["lab1-03"]) + SKEW_S) < 5, "faketime did not skew the agent behind"

        assert envy_io_status(farm) == {"lab1-01": True, "lab1-02": True, "lab1-03": True}

        shot = farm.root / "shot"  # inside the farm's project root (tests/farm.py)
        standin.make_frames(shot, 3, 4.0)
        submit(
            farm.layout,
            SubmitRequest(str(shot), output=str(farm.root / "out")),
            load_profiles([standin.profile]),
            fs=REAL_FS,
        )
        # The skewed agents take a frame each first; the normal one takes the last and keeps two idle workers.
        farm.send("lab1 02 render()", "lab1 03 render()")
        wait_for(lambda: {"lab1-02", "lab1-03"} <= holding_now(shot), 20, "the skewed agents to hold a frame")
        farm.send("lab1 01 render()")

        def owners() -> dict[str, str]:
            """Frame base -> the host that holds it or completed it."""
            listing = sort_listing(os.listdir(shot), ItemPattern([EXTENSION]))
            return {i.base: i.host for i in listing.working + listing.done}

        def holding() -> set[str]:
            return {i.host for i in sort_listing(os.listdir(shot), ItemPattern([EXTENSION])).working}

        wait_for(lambda: {"lab1-01", "lab1-02", "lab1-03"} <= holding(), 20, "every agent to hold a frame")
        ahead.kill9()
        behind.kill9()
        killed_at = time.monotonic()
        listing = sort_listing(os.listdir(shot), ItemPattern([EXTENSION]))
        held = {i.base: i.host for i in listing.working if i.host in ("lab1-02", "lab1-03")}
        assert set(held.values()) == {"lab1-02", "lab1-03"}
        with ReclaimWatch(owners, held, killed_at) as reclaims:
            # Ask the farm as a user would, until both killed agents are reported dead.
            dead: dict[str, tuple[float, float]] = {}  # host -> (asked, answered), seconds after the kill
            while len(dead) < 2 and time.monotonic() - killed_at < DEAD_AFTER + 10:
                asked = time.monotonic() - killed_at
                alive = envy_io_status(farm)
                answered = time.monotonic() - killed_at
                assert alive["lab1-01"], "the normal agent was declared dead"
                for host in ("lab1-02", "lab1-03"):
                    if not alive[host]:
                        dead.setdefault(host, (asked, answered))
            wait_for(
                lambda: len(reclaims.at) == len(held), DEAD_AFTER + 10, "the killed agents' frames to be reclaimed"
            )

        print(f"declared dead (asked, answered) s after the kill: {dead}; frames reclaimed after: {reclaims.at}")
        for host in ("lab1-02", "lab1-03"):
            assert host in dead, f"{host} was never declared dead"
            asked, answered = dead[host]
            # Its last heartbeat was at most one interval before the kill.
            assert answered >= DEAD_AFTER - 2 * HEARTBEAT, (
                f"{host} declared dead early ({answered:.1f} s after the kill)"
            )
            assert asked <= DEAD_AFTER + SLACK, f"{host} declared dead late ({asked:.1f} s after the kill)"
        for base, at in reclaims.at.items():
            # Its owner's last heartbeat: at most one interval (plus scheduling) before the kill.
            assert at >= DEAD_AFTER - 2 * HEARTBEAT, (
                f"{base} of {held[base]} reclaimed {at:.1f} s after the kill: early"
            )
            assert at <= DEAD_AFTER + HEARTBEAT + SLACK, (
                f"{base} of {held[base]} reclaimed {at:.1f} s after the kill: late"
            )


class ReclaimWatch:
    """Notes, from a thread, when each frame held by a killed agent gets a new owner."""

    def __init__(self, owners, held: dict[str, str], since: float) -> None:
        self.owners = owners
        self.held = held
        self.since = since
        self.at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            now_owners = self.owners()
            for base, owner in self.held.items():
                if base not in self.at and now_owners.get(base) != owner:
                    self.at[base] = time.monotonic() - self.since

    def __enter__(self) -> ReclaimWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_skewed_agents_judge_command_ages_by_the_share_clock_not_their_own(farm: Farm) -> None:
    libfaketime()
    # Twelve minutes old: past the default 10-minute lifetime, so no new agent may run it;
    # an agent 10 minutes behind that trusted its own clock would think it 2 minutes old.
    stale = Instruction(new_id(time.time() - 720), time.time() - 720, "*", "print('twelve minutes old')")
    farm.layout.instructions.write_text(farm.layout.instructions.read_text() + stale.format() + "\n")
    agents = [farm.start_agent("lab1-01"), start_skewed(farm, "lab1-02", "+10m"), start_skewed(farm, "lab1-03", "-10m")]
    for agent in agents:
        farm.wait_heartbeat(agent)
    # Sent now: an agent 10 minutes ahead that trusted its own clock would think it 10 minutes old.
    farm.send("* print('sent now')")
    wait_for(lambda: all("print: sent now" in a.log() for a in agents), 15, "every agent to run the new command")
    for agent in agents:
        assert agent.log().count("print: sent now") == 1
        assert "twelve minutes old" not in agent.log(), f"{agent.host} replayed an expired command"
