"""Share faults produced for real: an sshfs share vanishing under running agents, a full disk.

* The share disappears (every agent's sshfs mount is unmounted) and comes back:
  agents keep running, create nothing under the empty mount points, and after
  the remount run the command sent meanwhile exactly once and finish the render
  job with no frame lost and none rendered twice. The issue speaks of a minute;
  the test uses OUTAGE_S (longer than dead_after, like a minute is longer than
  the default 30 s) to stay fast.
* An agent started on an empty mount point waits and creates nothing.
* ENOSPC for real: the share is a small tmpfs that the test fills up.

The renders use the stand-in renderer of test_faults_standin.py (python
writes a file), not a real renderer: the point here is the share, not pixels.
kill -9 and SIGSTOP under rendering are covered by the render tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envy.protocol.sender import InstructionSender
from envy.render.claims import ItemPattern, sort_listing
from envy.render.profiles import load_profiles
from envy.render.submit import SubmitRequest, submit
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from envy.share.names import is_temp
from farm import BUSY_DEADLINE_S, Farm, wait_for
from netshare import in_mount_table, net_share, require_netshare
from test_faults_standin import EXTENSION, StandIn

# Lab machines are busy machines: CI runs these once more beside stress-ng (.ci/run).
pytestmark = pytest.mark.under_load

# How long the share stays away. Longer than dead_after (3 s in the fast test
# settings), as the minute is longer than the default 30 s.
OUTAGE_S = 5.0
FRAMES = 10
FRAME_S = 0.8


def _listing(folder: Path):
    return sort_listing(os.listdir(folder), ItemPattern([EXTENSION]))


def _printed(log_text: str, text: str) -> int:
    return log_text.count(f"print: {text}")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


class EmptyWatch:
    """Checks, many times a second, that an (unmounted) mount point stays empty."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self.seen: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for folder in self.folders:
                if in_mount_table(folder):
                    continue  # not unmounted yet (or already back)
                with contextlib.suppress(OSError):
                    names = os.listdir(folder)
                    if names:
                        self.seen.setdefault(str(folder), names)

    def __enter__(self) -> EmptyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.netshare
def test_share_disappears_and_comes_back_nothing_lost_nothing_twice(tmp_path: Path) -> None:
    require_netshare()
    standin = StandIn(tmp_path / "standin").install()
    farm = Farm(tmp_path / "farm")
    with net_share(tmp_path / "net", mounts=3, cache_timeout=1) as ns, contextlib.ExitStack() as cleanup:
        cleanup.callback(farm.stop_all)
        export = ns.export
        init_share(export, farm.user, fs=REAL_FS)
        shot = export / "proj" / "shot"
        bases = standin.make_frames(shot, FRAMES, FRAME_S)
        # The shell's machine is mount 2; the agents' machines are mounts 0 and 1.
        shell = ShareLayout(ns.mounts[2])
        hosts = ["lab1-01", "lab1-02"]
        agents = [
            farm.start_agent(host, share=ns.mounts[i], remap=[f"{export},{ns.mounts[i]}"], **standin.settings())
            for i, host in enumerate(hosts)
        ]
        status = {h: ShareLayout(export).status_file(h) for h in hosts}
        wait_for(lambda: all(status[h].exists() for h in hosts), BUSY_DEADLINE_S, "both agents to heartbeat")
        job = submit(shell, SubmitRequest(str(shot), output=str(export / "proj" / "out")),
                     load_profiles([standin.profile]), fs=REAL_FS)
        sender = InstructionSender(shell, 600, fs=REAL_FS)
        sender.send(["* render()"])
        # Both agents are mid-frame when the share goes away.
        wait_for(lambda: len(_listing(shot).done) >= 2 and len(_listing(shot).working) == 2, BUSY_DEADLINE_S,
                 "both agents to be rendering")

        with EmptyWatch(ns.mounts[:2]) as watch:
            for i in (0, 1):
                ns.unmount(i)
            gone_at = time.monotonic()
            sender.send(["lab1 * print('sent during the outage')"])
            wait_for(lambda: time.monotonic() - gone_at > OUTAGE_S, OUTAGE_S + 1, "the outage to last")
            assert all(a.alive() for a in agents), "an agent died while the share was away"
            created = {str(m): os.listdir(m) for m in ns.mounts[:2] if os.listdir(m)}
        assert not watch.seen and not created, f"created under empty mount points: {watch.seen or created}"
        for i in (0, 1):
            ns.remount(i)

        # The console output holds every log line; the share log misses those
        # written while it was still backing off after the outage (they went
        # to the agent's local fallback log).
        wait_for(lambda: all(_printed(a.output(), "sent during the outage") for a in agents), BUSY_DEADLINE_S,
                 "the command sent during the outage to run")
        wait_for(lambda: len(_listing(shot).done) == FRAMES, 30, f"all {FRAMES} frames to be done "
                 f"(now {_listing(shot).counts()}, renders {dict(standin.renders())})")
        assert all(a.alive() for a in agents)
        listing = _listing(shot)
        assert sorted(i.base for i in listing.done) == bases
        assert not listing.pending and not listing.working and not listing.failed
        assert standin.renders() == {b: 1 for b in bases}, "a frame was rendered more than once (or not at all)"
        for a in agents:
            assert _printed(a.output(), "sent during the outage") == 1
        outputs = sorted(p.name for p in (export / "proj" / "out").iterdir())
        assert outputs == [f"{b}.png" for b in bases], "stray or missing output files"
        assert job.id


def test_agent_started_on_an_empty_mount_point_waits_and_creates_nothing(farm: Farm, tmp_path: Path) -> None:
    mount_point = tmp_path / "Z"  # the share is not mounted: an empty folder
    mount_point.mkdir()
    with EmptyWatch([mount_point]) as watch:
        agent = farm.start_agent("lab1-01", share=mount_point)
        wait_for(
            lambda: "has no sentinel" in agent.output(), BUSY_DEADLINE_S, "the agent to notice the missing sentinel"
        )
        # Absence can only be shown over time: five more polls, and it still waits, alive.
        noticed = time.monotonic()
        wait_for(lambda: time.monotonic() - noticed > 5 * farm.settings["poll_interval"], BUSY_DEADLINE_S, "five polls")
        assert agent.alive()
        assert os.listdir(mount_point) == [] and not watch.seen, f"created under the empty mount point: {watch.seen}"
    # The share gets mounted (here: created): the agent carries on by itself.
    init_share(mount_point, farm.user, fs=REAL_FS)
    st = wait_for(
        lambda: _json(ShareLayout(mount_point).status_file("lab1-01")), BUSY_DEADLINE_S, "the agent to heartbeat"
    )
    assert st["pid"] == agent.pid and agent.alive()
    assert "is back" in agent.output()


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- ENOSPC for real -------------------------------------------------------------------

TMPFS_SIZE = "192k"


@contextlib.contextmanager
def small_tmpfs(folder: Path) -> Iterator[Path]:
    """A tiny tmpfs at ``folder`` (needs root); always unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    why = None
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root"
    else:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            why = f"cannot mount a tmpfs: {done.stderr.strip()}"
    if why:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the filesystem is full."""
    block = b"\0" * 4096
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC


class StatusReader:
    """Reads the status file in a loop; every read must be a whole, valid status."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reads = 0
        self.bad: list[str] = []
        self.counters: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                self.bad.append("missing")
                continue
            self.reads += 1
            try:
                self.counters.append(int(json.loads(data)["counter"]))
            except (ValueError, KeyError, TypeError) as exc:
                self.bad.append(f"{exc}: {data[:80]!r}")

    def __enter__(self) -> StatusReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_full_disk_agent_survives_and_no_file_is_torn(tmp_path: Path) -> None:
    farm = Farm(tmp_path / "farm", settings={"heartbeat": 0.2, "poll_interval": 0.2, "dead_after": 2})
    with small_tmpfs(tmp_path / "full") as share, contextlib.ExitStack() as cleanup:
        cleanup.callback(farm.stop_all)
        layout = ShareLayout(share)
        init_share(share, farm.user, fs=REAL_FS)
        agent = farm.start_agent("lab1-01", share=share)
        wait_for(
            lambda: (_json(layout.status_file("lab1-01")) or {}).get("counter", 0) > 2, BUSY_DEADLINE_S, "heartbeats"
        )
        sender = InstructionSender(layout, 600, fs=REAL_FS)
        sender.send(["* print('before the disk filled')"])
        wait_for(lambda: _printed(agent.output(), "before the disk filled"), BUSY_DEADLINE_S, "the first command")
        instructions_before = layout.instructions.read_bytes()

        with StatusReader(layout.status_file("lab1-01")) as reader:
            _fill(share / "filler.bin")
            wait_for(lambda: "No space left" in agent.output(), BUSY_DEADLINE_S, "the agent to hit ENOSPC")
            # The shell cannot publish a command either: it says so, and the file is untouched.
            with pytest.raises(OSError) as raised:
                sender.send(["* print('lost to the full disk')"])
            assert raised.value.errno == 28
            assert layout.instructions.read_bytes() == instructions_before
            full_reads = reader.reads
            wait_for(lambda: reader.reads > full_reads + 50, BUSY_DEADLINE_S, "more reads while the disk is full")
            stuck = reader.counters[-1]
            assert agent.alive()
            (share / "filler.bin").unlink()
            wait_for(
                lambda: reader.counters[-1] > stuck + 2, BUSY_DEADLINE_S, "heartbeats to resume after space came back"
            )
        assert reader.bad == [], f"torn or missing status file seen: {reader.bad[:5]}"
        assert reader.counters == sorted(reader.counters)

        # The lock was released despite the failed send: the next send works at once.
        sender.send(["* print('after the disk was freed')"])
        wait_for(
            lambda: _printed(agent.output(), "after the disk was freed"),
            BUSY_DEADLINE_S,
            "a command after freeing space",
        )
        assert _printed(agent.output(), "lost to the full disk") == 0
        assert agent.alive()
        leftovers = [str(p.relative_to(share)) for p in share.rglob("*") if is_temp(p.name)]
        assert leftovers == [], f"temp files left behind: {leftovers}"
        wait_for(
            lambda: "after the disk was freed" in _read(layout.host_logs("lab1-01") / "agent.log"),
            BUSY_DEADLINE_S,
            "the share log to be written again",
        )
