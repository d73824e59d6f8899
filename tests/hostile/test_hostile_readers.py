"""Every reader of a share file against hostile content (ENGINEERING §4: attack your own share).

Random bytes, random JSON of wrong types, huge and deep files, FIFOs, folders
and sockets in a file's place: a reader answers with its own one-line error
(a ValueError) or skips the file with a warning, never any other exception
and never a hang.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envy.policy.seats import SeatOwner, Seats
from envy.protocol.instructions import parse_instruction_file
from envy.protocol.status import AgentStatus, read_statuses
from envy.render.jobs import Job, JobError, list_jobs
from envy.render.profiles import ProfileError, load_profiles
from envy.share.bounded import CAPS, ShareFileError, load_json_bounded, load_yaml_bounded, read_share_file
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, init_share

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)
STATUS_KEYS = ["host", "nonce", "counter", "ip", "user", "pid", "state", "heartbeat", "workers", "render_jobs",
               "done_frames", "message", "recent"]
JOB_KEYS = ["id", "name", "kind", "renderer", "source", "extensions", "priority", "state", "output", "frames",
            "chunk", "max_retries", "remap", "settings"]
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def keyed(keys: list[str]) -> st.SearchStrategy[dict]:
    """Objects with the reader's own keys (so validation is reached) holding values of any type."""
    return st.dictionaries(st.sampled_from(keys), JSON, max_size=len(keys))


def run_with_deadline(fn, seconds: float = 10.0):  # type: ignore[no-untyped-def]
    """Run ``fn`` in a thread; fail (instead of hanging the suite) when it blocks."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the reader blocked for more than {seconds:g} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture
def share(tmp_path: Path) -> ShareLayout:
    init_share(tmp_path / "share", "student", ShareFS())
    return ShareLayout(tmp_path / "share")


# -- the bounded reader itself ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "folder", "socket"])
def test_a_non_regular_file_is_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "status.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    with pytest.raises(ShareFileError, match="plain file"):
        run_with_deadline(lambda: read_share_file(ShareFS(), path, "status"))


def test_a_huge_sparse_file_is_refused_after_reading_at_most_its_cap(tmp_path: Path) -> None:
    path = tmp_path / "instructions.txt"
    with open(path, "wb") as f:
        f.truncate(2 * 1024**3)  # 2 GB, sparse: costs nothing on disk, used to cost 2 GB of memory

    class Counting(ShareFS):  # type: ignore[misc]
        asked = 0

        def read_bounded(self, p, limit):  # type: ignore[no-untyped-def]
            Counting.asked = limit
            return super().read_bounded(p, limit)

    with pytest.raises(ShareFileError, match="larger than the 4 MiB"):
        read_share_file(Counting(), path, "instructions")
    assert Counting.asked == CAPS["instructions"] + 1
    assert len(read_share_file(ShareFS(), path, "instructions", partial=True)) == CAPS["instructions"]


@given(st.binary(max_size=2000))
@FEW
def test_random_bytes_as_json_raise_only_share_file_error(data: bytes) -> None:
    try:
        load_json_bounded(data, "x.json")
    except ShareFileError:
        pass


@pytest.mark.parametrize("depth", [33, 5000, 100_000])
def test_deep_json_is_refused(depth: int) -> None:
    with pytest.raises(ShareFileError, match="nested"):
        load_json_bounded(b"[" * depth + b"]" * depth, "deep.json")


@given(st.text(max_size=300))
@FEW
def test_random_yaml_raises_only_share_file_error(text: str) -> None:
    try:
        load_yaml_bounded(text, "config.yaml")
    except ShareFileError:
        pass


def test_a_yaml_alias_bomb_and_deep_yaml_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 4) + "]\n" for i in range(20))
    with pytest.raises(ShareFileError, match="aliases"):
        load_yaml_bounded(bomb, "config.yaml")
    with pytest.raises(ShareFileError, match="nested"):
        load_yaml_bounded("[" * 10000 + "]" * 10000, "config.yaml")


# -- status files ----------------------------------------------------------------------------------


@given(keyed(STATUS_KEYS) | JSON)
@FEW
def test_a_status_of_wrong_types_raises_only_value_error(data: object) -> None:
    try:
        status = AgentStatus.from_json(data)
    except ValueError:
        return
    # What was accepted has the types the reclaimer and envy-io compute with.
    assert isinstance(status.counter, int) and isinstance(status.heartbeat, (int, float))
    assert all(isinstance(w.index, int) for w in status.workers)
    assert all(isinstance(r.frame, str) and isinstance(r.seconds, float) for r in status.recent)


@pytest.mark.parametrize("recent", [
    "x", [1], [{"job": "j", "frame": "f"}], [{"job": "j", "frame": "f", "seconds": "9"}],
    [{"job": "j", "frame": "f", "seconds": -1}], [{"job": "j" * 300, "frame": "f", "seconds": 1}],
    [{"job": "j", "frame": "f", "seconds": 1, "extra": 1}], [{"job": "j", "frame": "f", "seconds": 1}] * 65,
])
def test_a_status_with_bad_recent_frames_is_refused_with_the_field(recent: object) -> None:
    with pytest.raises(ValueError, match="recent"):
        AgentStatus.from_json({"host": "lab1-01", "nonce": "ab", "recent": recent})


@given(st.lists(st.binary(max_size=300) | keyed(STATUS_KEYS).map(lambda d: json.dumps(d).encode()), max_size=4))
@FEW
def test_read_statuses_skips_any_bad_file_with_a_warning(share: ShareLayout, files: list[bytes]) -> None:
    for old in share.status_dir.iterdir():
        old.unlink()
    for i, data in enumerate(files):
        (share.status_dir / f"lab1-{i:02d}.json").write_bytes(data)
    statuses, warnings = read_statuses(share, ShareFS())
    assert len(statuses) + len(warnings) == len(files)


def test_read_statuses_survives_a_fifo_and_a_huge_file(share: ShareLayout) -> None:
    os.mkfifo(share.status_dir / "fifo-01.json")
    with open(share.status_dir / "huge-01.json", "wb") as f:
        f.truncate(1024**3)
    statuses, warnings = run_with_deadline(lambda: read_statuses(share, ShareFS()))
    assert statuses == [] and len(warnings) == 2
    assert any("fifo-01.json" in w and "FIFO" in w for w in warnings)


# -- job files -------------------------------------------------------------------------------------


@given(keyed(JOB_KEYS) | JSON)
@FEW
def test_a_job_of_wrong_types_raises_only_job_error(data: object) -> None:
    try:
        Job.from_json(data)
    except JobError:
        pass


@given(st.lists(st.binary(max_size=300) | keyed(JOB_KEYS).map(lambda d: json.dumps(d).encode()), max_size=4))
@FEW
def test_list_jobs_skips_any_bad_file_with_a_warning(share: ShareLayout, files: list[bytes]) -> None:
    for old in share.jobs_dir.glob("*.json"):
        old.unlink()
    for i, data in enumerate(files):
        (share.jobs_dir / f"20260101-000000-job{i}-abcd.json").write_bytes(data)
    jobs, warnings = list_jobs(share, ShareFS())
    assert len(jobs) + len(warnings) == len(files)


# -- seat files ------------------------------------------------------------------------------------


@given(st.lists(st.binary(max_size=200), max_size=4))
@FEW
def test_seat_files_of_random_bytes_never_raise(share: ShareLayout, files: list[bytes]) -> None:
    seats = Seats(share, "student", SeatOwner("lab1-01", 1, "n"), ShareFS())
    seats.ensure_folder()
    for old in seats.folder.iterdir():
        old.unlink()
    for i, data in enumerate(files, start=1):
        seats.path(i).write_bytes(data)
    found = seats.scan()
    assert len(found) == len(files)
    seats.free_gone(found)


def test_a_fifo_seat_does_not_block_the_users_agents(share: ShareLayout) -> None:
    seats = Seats(share, "student", SeatOwner("lab1-01", 1, "n"), ShareFS())
    seats.ensure_folder()
    os.mkfifo(seats.path(1))
    found = run_with_deadline(seats.scan)
    assert [s.owner for s in found] == [None]
    assert run_with_deadline(lambda: seats.claim(2, found)) == 2


# -- the instruction file --------------------------------------------------------------------------


@given(st.binary(max_size=3000))
@FEW
def test_instruction_file_of_random_bytes_never_raises(data: bytes) -> None:
    parse_instruction_file(data)


@given(st.text(max_size=200))
@FEW
def test_instruction_lines_with_random_stamps_never_raise(text: str) -> None:
    parse_instruction_file(f"[0123456789abcdef 9999-12-31T23:59:59.999Z] {text}\n"
                           f"[ffffffffffffffff 0001-01-01T00:00:00Z] {text}".encode())


# -- renderer profiles -----------------------------------------------------------------------------


@given(st.binary(max_size=500))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_profile_file_of_random_bytes_raises_only_profile_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(data)
    try:
        load_profiles([path])
    except ProfileError:
        pass


def test_a_fifo_profile_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.yaml")
    with pytest.raises(ProfileError, match="FIFO"):
        run_with_deadline(lambda: load_profiles([tmp_path / "p.yaml"]))


# -- the share clock (Must-hold 10) ----------------------------------------------------------------


def test_one_tampered_mtime_does_not_move_the_share_clock() -> None:
    from envy.share.share_clock import MAX_STEP_S, ShareClock

    clock = ShareClock(lambda: 1000.0)
    for i in range(3):
        clock.learn(1000.0 + i + 5.0, 1000.0 + i)  # the server is 5 s ahead
    assert clock.measured and clock.offset == 5.0
    clock.learn(1000.0 + 86000.0, 1000.0)  # someone touched the status file a day ahead
    assert clock.offset == 5.0
    clock.learn(1000.0 + 10 * 86400.0, 1000.0)  # ten days: refused outright
    assert clock.offset == 5.0 and clock.rejected == 1
    for _ in range(16):  # a real, lasting jump of the server clock is followed in bounded steps
        before = clock.offset
        clock.learn(1000.0 + 605.0, 1000.0)
        assert abs(clock.offset - before) <= MAX_STEP_S
    assert clock.offset == 605.0


def test_the_report_once_memory_is_bounded() -> None:
    from envy.seen import BoundedSeen

    seen = BoundedSeen(limit=100)
    assert all(seen.add(f"bad line {i}") for i in range(10_000))
    assert len(seen) == 100 and "bad line 9999" in seen and "bad line 0" not in seen
    assert not seen.add("bad line 9999")


def test_the_ledger_appends_prunes_and_survives_a_restart(tmp_path: Path) -> None:
    import json as json_mod

    from envy.agent.ledger import CommandLedger

    path = tmp_path / "ran-commands.json"
    path.write_text(json_mod.dumps({"ran": {"00000000000000aa": 1000.0}}))  # the earlier format
    ledger = CommandLedger(path, lambda: 600.0)
    assert ledger.has_run("00000000000000aa")
    for i in range(3000):
        ledger.record(f"{i:016x}", 2000.0 + i, 2000.0 + i)
    # Older than twice the lifetime: forgotten, in memory and (after compaction) on disk.
    assert len(ledger) <= 1201 and not ledger.has_run("00000000000000aa") and not ledger.has_run(f"{0:016x}")
    assert len(path.read_text().splitlines()) <= 2 * len(ledger) + 256 + 1
    with open(path, "a") as f:
        f.write("torn-line-without-a-ti")  # a crash mid-append
    again = CommandLedger(path, lambda: 600.0)
    assert again.has_run(f"{2999:016x}") and len(again) >= len(ledger)


def test_a_child_log_keeps_head_and_tail_within_its_cap(tmp_path: Path) -> None:
    from envy.agent.child_log import ChildLog

    log = ChildLog(tmp_path / "child.log", cap=64 * 1024)
    log.write_note("started pid 1")
    for i in range(200_000):  # about 2.5 MB of output
        log.write(f"output line {i}\n".encode())
    log.write_note("exit code 0")
    log.close()
    text = (tmp_path / "child.log").read_text()
    assert len(text) < 64 * 1024 + 1024
    assert "output line 0\n" in text and "output line 199999\n" in text
    assert "bytes of output cut here" in text
    assert text.rstrip().endswith("=== envy: exit code 0")
