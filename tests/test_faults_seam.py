"""Faults injected through the filesystem seam (``envy.share.fs.ShareFS``), in-process and fast.

These are the failures a test machine cannot produce for real (ENGINEERING
§4): an NFS rename that reports an error although it succeeded, ESTALE and
EIO, a listing seconds out of date, a sentinel that vanishes, ENOSPC and
permission errors on each write path. Each fake filesystem below overrides
one or two methods of the real one and passes everything else through to a
real temporary share, so the code under test runs unchanged on real files.

Real counterparts: test_faults_share.py (sshfs unmount, a full tmpfs).
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envy.agent.agent import MIN_PAUSE_PART, Agent
from envy.agent.build import build_agent, standard_planners
from envy.agent.heartbeat import Heartbeat
from envy.agent.processes import ProcessHandler
from envy.config import Config
from envy.logs import ResilientFileHandler
from envy.platform.dirs import LocalDirs
from envy.protocol.liveness import LivenessTracker
from envy.protocol.sender import InstructionSender
from envy.protocol.status import AgentStatus, read_statuses, write_status
from envy.render.claims import FolderQueue, Identity, ItemPattern, reset_items, sort_listing
from envy.render.jobs import Job, list_jobs, new_job_id, save_job
from envy.render.plans import PlanError, PlanInput
from envy.render.profiles import load_profiles
from envy.render.render_loop import RenderLoop
from envy.render.submit import SubmitRequest, submit
from envy.share.atomic import atomic_write, rename_attempt
from envy.share.fs import REAL_FS, ShareFS
from envy.share.layout import INSTRUCTIONS, SENTINEL, ShareLayout, init_share
from envy.share.names import is_temp
from envy.waiting import WaitTimeout
from farm import wait_for
from test_faults_standin import EXTENSION, StandIn

HOST = "lab1-01"
ME = Identity(HOST, 1111, "0a0a0a0a")
OTHER = Identity("lab1-02", 2222, "0b0b0b0b")
PATTERN = ItemPattern([EXTENSION])
JUNK = [".DS_Store", "._x", "._lab1-03.json", ".nfs000123", ".nfs000123.json", "Thumbs.db", "~$x", "~$lab1-04.json",
        "desktop.ini"]


def oserror(code: int, path: object = "") -> OSError:
    return OSError(code, os.strerror(code), os.fspath(path) if path else None)


# -- helpers --------------------------------------------------------------------------------


def frames(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"shot.{n:04d}{EXTENSION}" for n in range(1, count + 1)]
    for name in names:
        (folder / name).write_text("0.1\n")
    return names


def states(folder: Path) -> dict[str, list[str]]:
    """Item base -> the states and owners it has on disk right now (exactly one when all is well)."""
    seen: dict[str, list[str]] = {}
    for name in os.listdir(folder):
        item = PATTERN.parse(name)
        if item is not None:
            seen.setdefault(item.base, []).append(f"{item.state}:{item.host}")
    return seen


def temps(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if is_temp(p.name)]


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    init_share(root, "student", fs=REAL_FS)
    return root


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """In-process agents (no subprocess): the seam is passed in as ``fs``."""
    made: list[Agent] = []

    def make(root: Path, fs: ShareFS, **settings: object) -> Agent:
        values = {"poll_interval": 0.05, "poll_jitter": 0.0, "heartbeat": 0.1, "dead_after": 1.0, **settings}
        config = Config().with_values(values, "test")
        dirs = LocalDirs(state=tmp_path / f"state{len(made)}", config=tmp_path / "config")
        agent = build_agent(config, ShareLayout(root), HOST, "student", dirs, fs=fs, log_dir=tmp_path / "logs")
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.request_quit(restart=False)
        if agent.render is not None:
            agent.render.close()
        agent.processes.stop_all("test over")
        agent.processes.close()
        agent.heartbeat.stop()


class RunningAgent:
    """``Agent.run()`` on a thread, as the entry point runs it."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(agent.run()), daemon=True)

    def __enter__(self) -> RunningAgent:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.agent.request_quit(restart=False)
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the agent did not stop"


# -- 1. a rename that raises after it succeeded ---------------------------------------------------


class RenameThenRaiseFS(ShareFS):
    """NFS retransmits a RENAME whose reply was lost: the rename happened, the caller gets an error."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.lies = 0

    def rename(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        super().rename(src, dst)
        self.lies += 1
        raise oserror(self.code, src)


class RenameFailsFS(ShareFS):
    """A rename that really failed (EIO before anything happened)."""

    def rename(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        raise oserror(errno.EIO, src)


@pytest.mark.parametrize("code", [errno.ENOENT, errno.EIO, errno.ESTALE])
def test_a_rename_that_raises_after_it_succeeded_is_a_claim_won_exactly_once(tmp_path: Path, code: int) -> None:
    folder = tmp_path / "shot"
    frames(folder, 5)
    lying = RenameThenRaiseFS(code)
    mine = FolderQueue(folder, PATTERN, ME, lying)
    claim = mine.claim_next()
    assert claim is not None and lying.lies == 1
    assert states(folder)[claim.item.base] == [f"work:{HOST}"]
    # Nobody else gets it, and we do not claim it a second time.
    others = FolderQueue(folder, PATTERN, OTHER, fs=REAL_FS)
    taken = [c.item.base for c in iter(others.claim_next, None)]
    assert sorted(taken + [claim.item.base]) == [f"shot.{n:04d}" for n in range(1, 6)]
    assert mine.claim_next() is None
    # Completing through the same lying rename also counts once.
    assert mine.complete(claim) is True
    assert states(folder)[claim.item.base] == [f"done:{HOST}"]
    assert all(len(v) == 1 for v in states(folder).values())


def test_a_rename_that_really_failed_is_not_won_and_the_item_stays_pending(tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    names = frames(folder, 2)
    queue = FolderQueue(folder, PATTERN, ME, RenameFailsFS())
    assert queue.claim_next() is None
    assert sorted(os.listdir(folder)) == names


class RenameSaysDoneFS(ShareFS):
    """An SMB client that reports a rename it lost as a success (smbnetfs does, now and then)."""

    def rename(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        return None


def test_a_rename_reported_done_that_the_server_did_not_do_is_not_won(tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    names = frames(folder, 2)
    queue = FolderQueue(folder, PATTERN, ME, RenameSaysDoneFS())
    assert queue.claim_next() is None
    assert sorted(os.listdir(folder)) == names


def test_claimers_racing_with_lying_renames_claim_every_item_once(tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    frames(folder, 60)
    claimed: dict[str, list[str]] = {}
    lock = threading.Lock()

    def drain(me: Identity, fs: ShareFS) -> None:
        queue = FolderQueue(folder, PATTERN, me, fs)
        while (claim := queue.claim_next()) is not None:
            with lock:
                claimed.setdefault(claim.item.base, []).append(me.host)

    workers = [threading.Thread(target=drain, args=(Identity(f"lab1-{i:02d}", 100 + i, f"{i:08x}"),
                                                        RenameThenRaiseFS(errno.ENOENT) if i % 2 else ShareFS()))
               for i in range(1, 5)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert len(claimed) == 60 and all(len(hosts) == 1 for hosts in claimed.values()), claimed
    assert all(len(v) == 1 and v[0].startswith("work:") for v in states(folder).values())


# -- 2. ESTALE / EIO when polling the instruction file ---------------------------------------------


class FlakyInstructionsFS(ShareFS):
    """Reading the instruction file (the poll's fresh read, or any read) fails while ``failing`` is set."""

    def __init__(self, op: str, code: int) -> None:
        self.op = op
        self.code = code
        self.failing = True
        self.attempts = 0

    def _maybe_fail(self, op: str, path: object) -> None:
        if self.failing and op == self.op and Path(os.fspath(path)).name == INSTRUCTIONS:
            self.attempts += 1
            raise oserror(self.code, path)

    def stat(self, path):  # type: ignore[no-untyped-def]
        self._maybe_fail("stat", path)
        return super().stat(path)

    def read_bytes(self, path):  # type: ignore[no-untyped-def]
        self._maybe_fail("read", path)
        return super().read_bytes(path)

    def read_bounded(self, path, limit):  # type: ignore[no-untyped-def]
        self._maybe_fail("read", path)
        return super().read_bounded(path, limit)

    def read_if_changed(self, path, known, limit):  # type: ignore[no-untyped-def]
        self._maybe_fail("read", path)
        return super().read_if_changed(path, known, limit)


# The poll is one fresh read (no stat since issue 14): its open or its read failing both surface here.
@pytest.mark.parametrize("op", ["read"])
@pytest.mark.parametrize("code", [errno.ESTALE, errno.EIO])
def test_estale_or_eio_on_the_instruction_file_is_logged_backed_off_and_recovered(
    share: Path, make_agent, caplog: pytest.LogCaptureFixture, op: str, code: int
) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    fs = FlakyInstructionsFS(op, code)
    agent = make_agent(share, fs)
    sent = InstructionSender(ShareLayout(share), 600, fs=REAL_FS).send(["* print('hello after the fault')"]).sent[0]
    normal_wait = agent._next_wait()
    for _ in range(3):
        agent.poll_once()
    assert fs.attempts == 3
    assert not agent.ledger.has_run(sent.id), "ran a command it could not read"
    assert [r.message for r in caplog.records if "share error" in r.message and os.strerror(code) in r.message], \
        "the share error was not logged"
    assert sum("share error" in r.message for r in caplog.records) == 1, "logged on every poll instead of once"
    assert agent._next_wait() >= normal_wait + 1.0, "no backoff while the share fails"

    fs.failing = False
    agent.poll_once()
    assert agent.ledger.has_run(sent.id)
    assert agent.snapshot().message == "hello after the fault"
    assert agent._next_wait() == pytest.approx(normal_wait)
    assert any("reachable again" in r.message for r in caplog.records)
    agent.poll_once()
    assert sum("print: hello after the fault" in r.message for r in caplog.records) == 1


def test_a_slow_poll_does_not_push_the_next_one_back(share: Path, make_agent) -> None:
    """Polls are spaced start to start (a command waits at most poll_interval), never back to back."""
    agent = make_agent(share, ShareFS(), poll_interval=2.0, poll_jitter=0.0)
    assert agent._pause_after_poll(time.monotonic() - 1.5) == pytest.approx(0.5, abs=0.1)
    assert agent._pause_after_poll(time.monotonic() - 9.0) == pytest.approx(2.0 * MIN_PAUSE_PART)
    assert agent._pause_after_poll(time.monotonic()) == pytest.approx(2.0, abs=0.1)


# -- 3. a missing sentinel ------------------------------------------------------------------------


class RecordingFS(ShareFS):
    """The real filesystem, counting sentinel look-ups and recording every write; it can 'unmount'.

    Unmounted, every path under ``root`` is not found, as under an empty mount point.
    """

    WRITES = ("write_new", "replace", "rename", "rename_no_replace", "unlink", "makedirs")

    def __init__(self, root: Path) -> None:
        self.root = os.fspath(root)
        self.unmounted = False
        self.sentinel_looks = 0
        self.writes: list[str] = []

    def _gone(self, path: object) -> None:
        if self.unmounted and os.fspath(path).startswith(self.root):
            raise oserror(errno.ENOENT, path)

    def stat(self, path):  # type: ignore[no-untyped-def]
        if Path(os.fspath(path)).name == SENTINEL:
            self.sentinel_looks += 1
        self._gone(path)
        return super().stat(path)

    def listdir(self, path):  # type: ignore[no-untyped-def]
        self._gone(path)
        return super().listdir(path)

    def read_bytes(self, path):  # type: ignore[no-untyped-def]
        self._gone(path)
        return super().read_bytes(path)

    def read_bounded(self, path, limit):  # type: ignore[no-untyped-def]
        self._gone(path)
        return super().read_bounded(path, limit)
    def read_if_changed(self, path, known, limit):  # type: ignore[no-untyped-def]
        self._gone(path)
        return super().read_if_changed(path, known, limit)


def _recording(name: str):  # type: ignore[no-untyped-def]
    def method(self, *args):  # type: ignore[no-untyped-def]
        self.writes.append(f"{name} {os.fspath(args[-1])}")
        self._gone(args[0])
        return getattr(ShareFS, name)(self, *args)

    return method


for _name in RecordingFS.WRITES:
    setattr(RecordingFS, _name, _recording(_name))


def test_missing_sentinel_the_agent_waits_and_writes_nothing_then_starts(tmp_path: Path, make_agent) -> None:
    mount_point = tmp_path / "Z"  # an empty mount point: the share is not there
    mount_point.mkdir()
    fs = RecordingFS(mount_point)
    agent = make_agent(mount_point, fs)
    with RunningAgent(agent):
        wait_for(lambda: fs.sentinel_looks >= 5, 10, "the agent to look for the sentinel a few times")
        assert fs.writes == [] and os.listdir(mount_point) == []
        assert agent.snapshot().state == "waiting-for-share"
        init_share(mount_point, "student", fs=REAL_FS)  # the share is mounted
        status = ShareLayout(mount_point).status_file(HOST)
        wait_for(status.exists, 10, "the agent to heartbeat once the sentinel is there")


def test_sentinel_lost_while_running_no_writes_until_it_is_back_and_no_command_lost(share: Path, make_agent) -> None:
    fs = RecordingFS(share)
    layout = ShareLayout(share)
    agent = make_agent(share, fs)
    with RunningAgent(agent):
        wait_for(lambda: agent.heartbeat.counter >= 3, 10, "heartbeats")
        fs.unmounted = True
        wait_for(lambda: agent.snapshot().state == "waiting-for-share", 10, "the agent to notice the lost share")
        fs.writes.clear()
        looks = fs.sentinel_looks
        sent = InstructionSender(layout, 600, fs=REAL_FS).send(["* print('sent while unmounted')"]).sent[0]
        wait_for(lambda: fs.sentinel_looks >= looks + 10, 10, "ten more polls")
        assert fs.writes == [], f"wrote to an unmounted share: {fs.writes[:5]}"
        assert not agent.ledger.has_run(sent.id)
        counter = json.loads(layout.status_file(HOST).read_text())["counter"]
        fs.unmounted = False
        wait_for(lambda: agent.ledger.has_run(sent.id), 10, "the command sent while unmounted to run")
        wait_for(lambda: json.loads(layout.status_file(HOST).read_text())["counter"] > counter, 10, "heartbeats again")
        # The ledger records a command before it runs (never twice); the message follows when it has run.
        wait_for(lambda: agent.snapshot().message == "sent while unmounted", 10, "the command's print to show")


# -- 4. a stale listing ------------------------------------------------------------------------------


class StaleListingFS(ShareFS):
    """``listdir`` answers from a snapshot taken earlier (NFS/SMB directory caches)."""

    def __init__(self) -> None:
        self.snapshots: dict[str, list[str]] = {}
        self.renames = 0

    def freeze(self, folder: Path) -> None:
        self.snapshots[os.fspath(folder)] = os.listdir(folder)

    def listdir(self, path):  # type: ignore[no-untyped-def]
        frozen = self.snapshots.get(os.fspath(path))
        return list(frozen) if frozen is not None else super().listdir(path)

    def rename(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        self.renames += 1
        super().rename(src, dst)


def test_stale_listing_of_items_claimed_by_others_no_double_claim_and_the_claimer_moves_on(tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    frames(folder, 10)
    stale = StaleListingFS()
    stale.freeze(folder)
    others = FolderQueue(folder, PATTERN, OTHER, fs=REAL_FS)
    taken_by_others = {others.claim_next().item.base for _ in range(9)}  # type: ignore[union-attr]
    mine = FolderQueue(folder, PATTERN, ME, stale)
    claim = mine.claim_next()
    assert claim is not None and claim.item.base not in taken_by_others
    assert stale.renames <= 10, "tried a stale name twice"
    on_disk = states(folder)
    assert all(len(v) == 1 for v in on_disk.values())
    assert on_disk[claim.item.base] == [f"work:{HOST}"]
    assert sorted(b for b, v in on_disk.items() if v == ["work:lab1-02"]) == sorted(taken_by_others)


def test_stale_listing_that_still_shows_our_own_claim_does_not_hand_it_out_twice(tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    frames(folder, 3)
    stale = StaleListingFS()
    stale.freeze(folder)
    queue = FolderQueue(folder, PATTERN, ME, stale)  # one agent's queue, shared by its workers
    held = [c.item.base for c in itertools.islice(iter(queue.claim_next, None), 10)]
    assert sorted(held) == ["shot.0001", "shot.0002", "shot.0003"], f"claimed twice: {held}"


def test_stale_listing_two_reclaimers_of_a_dead_owners_item_only_one_wins(tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    frames(folder, 1)
    dead = Identity("lab1-09", 999, "deadbeef")
    FolderQueue(folder, PATTERN, dead, fs=REAL_FS).claim_next()
    stale = StaleListingFS()
    stale.freeze(folder)
    listing_a = sort_listing(stale.listdir(folder), PATTERN)
    listing_b = sort_listing(stale.listdir(folder), PATTERN)
    first = FolderQueue(folder, PATTERN, OTHER, stale).reclaim(listing_a.working[0])
    second = FolderQueue(folder, PATTERN, ME, stale).reclaim(listing_b.working[0])
    assert first is not None and second is None
    assert states(folder) == {"shot.0001": ["work:lab1-02"]}


# -- 5. ENOSPC, EIO, EACCES on every write path ---------------------------------------------------------


class FailingWritesFS(ShareFS):
    """Writes to names containing ``target`` fail with ``code`` at step ``step``.

    Steps: ``write`` (half the data reaches the temp file, then the error: a
    torn temp), ``close`` (all data written, the error reported at close as
    NFS does), ``replace`` (the publish itself fails).
    """

    def __init__(self, target: str, step: str, code: int) -> None:
        self.target = target
        self.step = step
        self.code = code
        self.failing = True
        self.failures = 0

    def _hit(self, step: str, path: object) -> bool:
        return self.failing and step == self.step and self.target in os.fspath(path)

    def write_new(self, path, data: bytes) -> None:  # type: ignore[no-untyped-def]
        if self._hit("write", path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o664)
            try:
                os.write(fd, data[: len(data) // 2])
            finally:
                os.close(fd)
            self.failures += 1
            raise oserror(self.code, path)
        super().write_new(path, data)
        if self._hit("close", path):
            self.failures += 1
            raise oserror(self.code, path)

    def replace(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        if self._hit("replace", dst):
            self.failures += 1
            raise oserror(self.code, dst)
        super().replace(src, dst)


WRITE_FAULTS = [
    (step, code) for step in ("write", "close", "replace") for code in (errno.ENOSPC, errno.EIO, errno.EACCES)
]
FAULT_IDS = [f"{step}-{errno.errorcode[code]}" for step, code in WRITE_FAULTS]


@pytest.mark.parametrize(("step", "code"), WRITE_FAULTS, ids=FAULT_IDS)
def test_atomic_write_failure_keeps_the_old_file_whole_and_removes_the_temp(
    tmp_path: Path, step: str, code: int
) -> None:
    target = tmp_path / "job.json"
    target.write_text('{"old": true}\n')
    with pytest.raises(OSError) as raised:
        atomic_write(
            target, '{"new": true, "padding": "' + "x" * 5000 + '"}\n', FailingWritesFS("job.json", step, code)
        )
    assert raised.value.errno == code
    assert target.read_text() == '{"old": true}\n'
    assert temps(tmp_path) == []


@pytest.mark.parametrize(("step", "code"), WRITE_FAULTS, ids=FAULT_IDS)
def test_heartbeat_survives_status_write_errors_and_the_status_file_is_never_torn(
    share: Path, caplog: pytest.LogCaptureFixture, step: str, code: int
) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    layout = ShareLayout(share)
    fs = FailingWritesFS(f"{HOST}.json", step, code)
    fs.failing = False
    beat = Heartbeat(
        layout, fs, lambda: 0.1, lambda: AgentStatus(host=HOST, nonce="0a0a0a0a", state="idle"), lambda: True
    )
    beat.beat()
    before = layout.status_file(HOST).read_bytes()
    fs.failing = True
    for _ in range(3):
        beat.beat()  # must not raise
    assert fs.failures == 3
    assert layout.status_file(HOST).read_bytes() == before, "the status file changed while its writes failed"
    assert json.loads(before)["counter"] == 1
    assert temps(share) == []
    warnings = [r for r in caplog.records if "cannot write status file" in r.message]
    assert len(warnings) == 1 and os.strerror(code) in warnings[0].message
    fs.failing = False
    beat.beat()
    assert json.loads(layout.status_file(HOST).read_text())["counter"] == 5
    assert any("writable again" in r.message for r in caplog.records)


@pytest.mark.parametrize(("step", "code"), WRITE_FAULTS, ids=FAULT_IDS)
def test_sending_a_command_on_a_failing_share_raises_keeps_the_file_and_frees_the_lock(share: Path, step: str,
                                                                                      code: int) -> None:
    layout = ShareLayout(share)
    InstructionSender(layout, 600, fs=REAL_FS).send(["* print('one')"])
    before = layout.instructions.read_bytes()
    fs = FailingWritesFS(INSTRUCTIONS, step, code)
    with pytest.raises(OSError) as raised:
        InstructionSender(layout, 600, fs=fs).send(["* print('two')"])
    assert raised.value.errno == code
    assert layout.instructions.read_bytes() == before
    assert temps(share) == []
    assert os.listdir(layout.instructions_lock) == ["free"], "the failed send kept the writers' lock"
    started = time.monotonic()
    InstructionSender(layout, 600, fs=REAL_FS).send(["* print('three')"])
    assert time.monotonic() - started < 5
    assert b"print('three')" in layout.instructions.read_bytes()


def _broken_share_log(kind: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "ENOSPC":
        path.symlink_to("/dev/full")  # every write fails with ENOSPC, for real
    elif kind == "EISDIR":
        path.mkdir()  # open() fails


class _FailingStream:
    def __init__(self, code: int) -> None:
        self.code = code

    def write(self, text: str) -> int:
        raise oserror(self.code)

    def flush(self) -> None:
        raise oserror(self.code)

    def close(self) -> None:
        pass

    def tell(self) -> int:
        return 0

    def seek(self, *args: object) -> int:
        return 0


@pytest.mark.parametrize("kind", ["ENOSPC", "EISDIR", "EIO", "EACCES"])
def test_share_log_errors_fall_back_to_the_local_log_and_come_back(tmp_path: Path, kind: str) -> None:
    share_log = tmp_path / "share" / "logs" / HOST / "agent.log"
    local_log = tmp_path / "local" / "agent-local.log"
    _broken_share_log(kind, share_log)
    handler = ResilientFileHandler(share_log, local_log, 100_000, 1)
    handler.setFormatter(logging.Formatter("%(message)s"))
    if kind in ("EIO", "EACCES"):  # no way to get these from a local disk as root: break the open stream
        code = getattr(errno, kind)
        opened = handler._open_share()
        opened.stream = _FailingStream(code)  # type: ignore[assignment]
        handler._share = opened
    logger = logging.getLogger(f"test-faults-{kind}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("written while the share log fails")  # must not raise
        assert "written while the share log fails" in local_log.read_text()
        # The share log works again: after the backoff, lines go there.
        if share_log.is_symlink() or share_log.is_file():
            share_log.unlink()
        elif share_log.is_dir():
            share_log.rmdir()

        def reaches_share() -> bool:
            logger.error("written after the share log came back")
            return share_log.is_file() and "came back" in share_log.read_text()

        wait_for(reaches_share, 10, "the share log to be used again", interval=0.2)
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_a_child_whose_log_cannot_be_written_still_runs_to_the_end(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="envy")
    log_path = tmp_path / "logs" / "shot.0001.lab1-01.1.log"
    log_path.parent.mkdir()
    log_path.symlink_to("/dev/full")  # ENOSPC on every write of the child's log
    done = tmp_path / "done"
    with ProcessHandler(tmp_path / "state") as handler:
        child = handler.start("full-log", [sys.executable, "-c", f"print('x' * 9999); open({str(done)!r}, 'w')"],
                              log_path)
        result = child.wait(30)
    assert result is not None and result.returncode == 0 and result.killed_reason is None
    assert done.exists()
    assert any("cannot write log" in r.message for r in caplog.records)


# -- 6. the share going away under a render --------------------------------------------------------------


class VanishingShareFS(ShareFS):
    """The share can vanish (every path under ``root`` is not found: an empty mount point),
    and renames to a completed name can fail once with EIO (a server hiccup)."""

    def __init__(self, root: Path) -> None:
        self.root = os.fspath(root)
        self.gone = False
        self.done_rename_failures = 0

    def _check(self, path: object) -> None:
        if self.gone and os.fspath(path).startswith(self.root):
            raise oserror(errno.ENOENT, path)


def _vanishing(name: str):  # type: ignore[no-untyped-def]
    def method(self, *args):  # type: ignore[no-untyped-def]
        for arg in args[:2]:
            if isinstance(arg, (str, os.PathLike)):
                self._check(arg)
        if name == "rename" and "~done~" in os.fspath(args[1]) and self.done_rename_failures > 0:
            self.done_rename_failures -= 1
            raise oserror(errno.EIO, args[0])
        return getattr(ShareFS, name)(self, *args)

    return method


for _name in ("stat", "listdir", "read_bytes", "read_bounded", "read_if_changed", "write_new", "replace", "rename",
              "rename_no_replace", "unlink",
              "makedirs", "mkdir", "on_server"):
    setattr(VanishingShareFS, _name, _vanishing(_name))


RENDER_FAULTS = ["share vanishes mid-render", "EIO on the rename to done", "render fails while the share is away"]


@pytest.mark.parametrize("fault", RENDER_FAULTS)
def test_a_share_fault_during_a_render_loses_no_frame(tmp_path: Path, share: Path, make_agent, fault: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """An unreachable share is not a lost claim: the frame stays this agent's and is
    completed (or failed, to be retried) when the share answers again, never left
    claimed by a live agent that nobody reclaims from."""
    caplog.set_level(logging.INFO, logger="envy")
    standin = StandIn(tmp_path / "standin").install()
    shot = share / "proj" / "shot"
    failing = fault == "render fails while the share is away"
    bases = standin.make_frames(shot, 2, 0.8, fail=failing)
    layout = ShareLayout(share)
    submit(layout, SubmitRequest(str(shot), output=str(share / "proj" / "out"), max_retries=0),
           load_profiles([standin.profile]), fs=REAL_FS)
    fs = VanishingShareFS(share)
    agent = make_agent(share, fs, profiles=[str(standin.profile)])
    agent.heartbeat.beat()
    if fault == "EIO on the rename to done":
        fs.done_rename_failures = 1
    agent.start_render((), {})
    wait_for(lambda: any(v == [f"work:{HOST}"] for v in states(shot).values()), 10, "a frame to be claimed")
    if fault != "EIO on the rename to done":
        fs.gone = True
        # Until the render ends (or is given up), over several ownership checks (one per heartbeat).
        wait_for(lambda: not agent.processes.children(), 10, "the render to end")
        wait_for(lambda: any("share unreachable while" in r.message for r in caplog.records), 10,
                 "a completion (or failure) attempt refused while the share is away")
        fs.gone = False
    try:
        wait_for(lambda: _finished(shot), 15, "every frame to be done or failed")
    except WaitTimeout:
        pytest.fail(f"frames stuck after the share came back: {states(shot)}")
    if failing:
        assert states(shot) == {b: [f"failed:{HOST}"] for b in bases}, "a failed frame was not marked failed"
    else:
        assert states(shot) == {b: [f"done:{HOST}"] for b in bases}
        assert standin.renders() == {b: 1 for b in bases}


def _finished(shot: Path) -> bool:
    """Every frame is done or failed: none pending, none still claimed."""
    return all(v[0].split(":")[0] in ("done", "failed") for v in states(shot).values())


def test_a_frame_lost_to_a_takeover_can_be_claimed_again_after_a_reset(tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    frames(folder, 1)
    mine = FolderQueue(folder, PATTERN, ME, fs=REAL_FS)
    claim = mine.claim_next()
    assert claim is not None
    # Paused past dead_after: another agent takes the frame over and completes it.
    theirs = FolderQueue(folder, PATTERN, OTHER, fs=REAL_FS)
    taken = theirs.reclaim(PATTERN.parse(claim.path.name))  # type: ignore[arg-type]
    assert taken is not None and theirs.complete(taken)
    assert mine.fail(claim, 2) is None, "failed a frame that was no longer ours"
    # The user resets the job (envy-io reset --all): the frame is pending again, for anyone.
    assert reset_items(folder, PATTERN, ["done"], fs=REAL_FS) == 1
    again = mine.claim_next()
    assert again is not None and again.item.base == "shot.0001", "this agent can never take that frame again"


# -- 7. judging liveness across an outage ---------------------------------------------------------


class GoneFS(ShareFS):
    """While ``gone``, every path under ``root`` is not found: the share is away for everyone."""

    def __init__(self, root: Path) -> None:
        self.root = os.fspath(root)
        self.gone = False

    def _check(self, path: object) -> None:
        if self.gone and os.fspath(path).startswith(self.root):
            raise oserror(errno.ENOENT, path)


for _name in ("stat", "listdir", "read_bytes", "read_bounded", "read_if_changed", "write_new", "replace", "rename",
              "rename_no_replace", "unlink",
              "makedirs", "mkdir", "on_server"):
    setattr(GoneFS, _name, _vanishing(_name))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_after_an_outage_for_everyone_agents_get_a_fresh_grace_but_the_dead_are_still_reclaimed(
    tmp_path: Path, share: Path, make_agent
) -> None:
    layout = ShareLayout(share)
    shot = share / "proj" / "shot"
    frames(shot, 2)
    standin = StandIn(tmp_path / "standin").install()
    submit(
        layout,
        SubmitRequest(str(shot), output=str(share / "proj" / "out")),
        load_profiles([standin.profile]),
        fs=REAL_FS,
    )
    FolderQueue(shot, PATTERN, OTHER, fs=REAL_FS).claim_next()  # the other agent is rendering this one
    fs = GoneFS(share)
    # poll_interval: the job list is re-read at every scan, as it is during a real outage
    # (a minute is many poll intervals).
    agent = make_agent(share, fs, dead_after=1.0, heartbeat=0.2, poll_interval=1e-6)
    loop = RenderLoop(agent, standard_planners())
    loop.free_workers = lambda: 1  # type: ignore[method-assign]  # one idle worker (the loop is not started here)
    reclaimer = loop.reclaimer
    clock = Clock()
    reclaimer.tracker = LivenessTracker(agent.config.dead_after, clock, for_takeover=True)
    beats = iter(range(1, 100))

    def other_beats() -> None:
        write_status(
            layout, AgentStatus(host=OTHER.host, nonce=OTHER.nonce, counter=next(beats), state="rendering"), fs=REAL_FS
        )

    def owners() -> list[str]:
        return [v[0] for v in states(shot).values() if v[0].startswith("work")]

    other_beats()
    reclaimer.scan()
    clock.now += 0.2
    other_beats()
    reclaimer.scan()
    fs.gone = True  # the share is away for everyone: nobody beats, nobody sees
    for _ in range(15):  # three times dead_after
        clock.now += 0.2
        reclaimer.scan()
    fs.gone = False  # back; the other agent has not had the time to beat again
    reclaimer.scan()
    assert owners() == ["work:lab1-02"], "took over a frame before its owner could beat after the outage"
    clock.now += 0.2
    other_beats()
    reclaimer.scan()
    assert owners() == ["work:lab1-02"]
    clock.now += agent.config.dead_after + 0.1  # now it really stops beating
    reclaimer.scan()
    assert owners() == [f"work:{HOST}"], "a really dead agent's frame was not reclaimed"


def test_an_agent_takes_over_no_more_stale_frames_than_it_has_idle_workers(share: Path, make_agent) -> None:
    """Fair reclaiming (issue 14): the dead agent's other frames stay for the other agents."""
    layout = ShareLayout(share)
    shot = share / "proj" / "shot"
    frames(shot, 3)
    standin_profile = StandIn(share.parent / "standin-fair").install().profile
    submit(
        layout,
        SubmitRequest(str(shot), output=str(share / "proj" / "out")),
        load_profiles([standin_profile]),
        fs=REAL_FS,
    )
    dead = FolderQueue(shot, PATTERN, OTHER, fs=REAL_FS)
    for _ in range(3):
        dead.claim_next()  # a dead agent held three frames
    agent = make_agent(share, ShareFS(), dead_after=1.0, heartbeat=0.2, poll_interval=1e-6)
    loop = RenderLoop(agent, standard_planners())
    idle = [1]
    loop.free_workers = lambda: idle[0]  # type: ignore[method-assign]  # a one-worker agent, idle
    reclaimer = loop.reclaimer
    clock = Clock()
    reclaimer.tracker = LivenessTracker(agent.config.dead_after, clock, for_takeover=True)
    reclaimer.scan()  # first sighting of nothing: the owner has no status file at all
    clock.now += agent.config.dead_after + 0.1
    reclaimer.scan()

    def owners() -> list[str]:
        return sorted(v[0] for v in states(shot).values() if v[0].startswith("work"))

    assert owners() == sorted([f"work:{HOST}", f"work:{OTHER.host}", f"work:{OTHER.host}"])
    reclaimer.scan()  # the one taken over has not been started yet: still no room
    assert owners().count(f"work:{HOST}") == 1
    assert reclaimer.take() is not None  # the idle worker starts it ...
    idle[0] = 0  # ... and is busy now
    reclaimer.scan()
    assert owners().count(f"work:{HOST}") == 1, "took a second stale frame without a free worker"


def test_a_reclaimer_whose_round_comes_late_does_not_take_a_living_owners_frame(share: Path, make_agent) -> None:
    """A busy CPU or a slow share delays a round past dead_after while the owner beats on: the change
    it then sees is dated when seen, so the living owner keeps its frame (the CI double render)."""
    layout = ShareLayout(share)
    shot = share / "proj" / "shot"
    frames(shot, 1)
    standin_profile = StandIn(share.parent / "standin-late").install().profile
    submit(layout, SubmitRequest(str(shot), output=str(share / "proj" / "out")), load_profiles([standin_profile]),
           fs=REAL_FS)
    FolderQueue(shot, PATTERN, OTHER, fs=REAL_FS).claim_next()
    agent = make_agent(share, ShareFS(), dead_after=1.0, heartbeat=0.2, poll_interval=1e-6)
    loop = RenderLoop(agent, standard_planners())
    loop.free_workers = lambda: 1  # type: ignore[method-assign]
    reclaimer = loop.reclaimer
    clock = Clock()
    reclaimer.tracker = LivenessTracker(agent.config.dead_after, clock, for_takeover=True)
    for counter in range(1, 4):  # watched beating, a look per beat
        write_status(layout, AgentStatus(host=OTHER.host, nonce=OTHER.nonce, counter=counter, heartbeat=0.2),
                     fs=REAL_FS)
        reclaimer.scan()
        clock.now += 0.2
    clock.now += 3 * agent.config.dead_after  # the next round comes late; the owner beat on meanwhile
    beats = int(3 * agent.config.dead_after / 0.2)  # as many as a 0.2 s heartbeat makes in that time
    write_status(layout, AgentStatus(host=OTHER.host, nonce=OTHER.nonce, counter=3 + beats, heartbeat=0.2),
                 fs=REAL_FS)
    reclaimer.scan()
    assert [v[0] for v in states(shot).values()] == [f"work:{OTHER.host}"], "took a living owner's frame"
    clock.now += agent.config.dead_after + 0.1  # now it really is silent
    reclaimer.scan()
    assert [v[0] for v in states(shot).values()] == [f"work:{HOST}"], "a really dead owner's frame stayed"


# -- 8. corrupt and truncated files, junk names ------------------------------------------------------------


def _status(host: str, **extra: object) -> bytes:
    return json.dumps({**AgentStatus(host=host, nonce="0c0c0c0c", counter=7).to_json(), **extra}).encode()


def test_corrupt_status_files_are_skipped_with_a_warning_and_junk_names_silently(share: Path) -> None:
    layout = ShareLayout(share)
    good = _status("lab1-01")
    corrupt = {
        "lab1-02.json": good[: len(good) // 2],  # truncated
        "lab1-03.json": b"",
        "lab1-04.json": b"\xff\xfe not utf-8",
        "lab1-05.json": b"[1, 2, 3]",
        "lab1-06.json": json.dumps({"host": "lab1-06"}).encode(),  # no nonce
        "lab1-07.json": _status("lab1-07", counter="seven"),
        "lab1-08.json": _status("lab1-08", workers=7),
    }
    (layout.status_dir / "lab1-01.json").write_bytes(good)
    for name, data in corrupt.items():
        (layout.status_dir / name).write_bytes(data)
    for name in JUNK + [".lab1-09.json.envy-tmp-0123456789ab"]:
        (layout.status_dir / name).write_bytes(good[:10])
    # A newer agent adds fields (top level and per worker): still read.
    (layout.status_dir / "lab1-10.json").write_bytes(
        _status("lab1-10", future=1, workers=[{"index": 0, "frame": "shot.0001", "future_field": 2}]))
    statuses, warnings = read_statuses(layout, fs=REAL_FS)
    assert sorted(s.host for s in statuses) == ["lab1-01", "lab1-10"]
    assert statuses[1].workers[0].frame == "shot.0001"
    assert sorted(w.split()[3].rstrip(":") for w in warnings) == sorted(corrupt)
    assert all(w.startswith("skipped status file") and "\n" not in w for w in warnings)


def _job_json(job_id: str, **extra: object) -> bytes:
    job = Job(id=job_id, name="shot", kind="frames", renderer="standin", source="/x/shot", extensions=[EXTENSION])
    return json.dumps({**job.to_json(), **extra}).encode()


def test_corrupt_job_files_are_skipped_with_a_warning_and_junk_names_silently(share: Path) -> None:
    layout = ShareLayout(share)
    good_id = new_job_id("good")
    save_job(layout, Job.from_json(json.loads(_job_json(good_id))), fs=REAL_FS)
    good = _job_json(good_id)
    corrupt = {
        "a.json": good[: len(good) // 3],
        "b.json": b"",
        "c.json": b"\x00\x01\x02",
        "d.json": b'"just a string"',
        "e.json": _job_json("not-an-id"),
        "f.json": _job_json(new_job_id("f"), priority="high"),
        "g.json": _job_json(new_job_id("g"), extensions=".frame"),
        "h.json": json.dumps({"id": new_job_id("h")}).encode(),
    }
    for name, data in corrupt.items():
        (layout.jobs_dir / name).write_bytes(data)
    for name in JUNK + [f".{good_id}.json.envy-tmp-0123456789ab"]:
        (layout.jobs_dir / name).write_bytes(good)
    jobs, warnings = list_jobs(layout, fs=REAL_FS)
    assert [j.id for j in jobs] == [good_id]
    assert sorted(w.split()[3].rstrip(":") for w in warnings) == sorted(corrupt)
    assert all(w.startswith("skipped job file") and "\n" not in w for w in warnings)


def test_junk_names_in_a_frame_folder_are_never_items(tmp_path: Path) -> None:
    names = frames(tmp_path / "shot", 2) + JUNK + [
        f"._shot.0001{EXTENSION}",  # macOS AppleDouble companion of a frame
        f"~$shot.0002{EXTENSION}",
        f".nfs00000000001234{EXTENSION}",
        f".shot.0001{EXTENSION}.envy-tmp-0123456789ab",
        f"shot.0003.envy~unknowntag{EXTENSION}",
        f"shot.0004.envy~work~x~lab1-01~1~abc{EXTENSION}",
        "shot.0005.exr",
    ]
    listing = sort_listing(names, PATTERN)
    assert [i.base for i in listing.pending] == ["shot.0001", "shot.0002"]
    assert not listing.working and not listing.done and not listing.failed


@pytest.mark.parametrize("content", [b"", b'{"type": "range", "start": 1, "en', b"\xff\xfe", b"[]", b'{"start": 1}',
                                     b'{"type": "range", "start": "one", "end": 2}',
                                     b'{"type": "no-such-type"}'])
def test_corrupt_task_files_fail_the_item_with_a_one_line_reason(tmp_path: Path, content: bytes) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "shot.0001-0005.json").write_bytes(content)
    job = Job(id=new_job_id("t"), name="t", kind="tasks", renderer="povray", source=str(tmp_path / "a.pov"),
              extensions=[".json"])
    claim = FolderQueue(folder, ItemPattern([".json"]), ME, fs=REAL_FS).claim_next()
    assert claim is not None
    with pytest.raises(PlanError) as raised:
        standard_planners().plan(PlanInput(job, claim, load_profiles(), Config(), ME.nonce, tmp_path, REAL_FS))
    assert str(raised.value) and "\n" not in str(raised.value)


# The rename seam also carries rename_attempt's own contract, used by every claim and lock.
def test_rename_attempt_wins_only_if_the_destination_is_there(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    assert rename_attempt(tmp_path / "a", tmp_path / "b", RenameThenRaiseFS(errno.ENOENT)) is True
    assert rename_attempt(tmp_path / "b", tmp_path / "c", RenameFailsFS()) is False
    assert os.listdir(tmp_path) == ["b"]
