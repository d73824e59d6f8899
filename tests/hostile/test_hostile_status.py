"""Others' status files are evidence, not orders (issue 9 Must-hold 10).

In signed mode status files carry the farm key's seal, so only key holders
speak for a host; in any mode a change that beats cannot make (a counter going
back or racing ahead of the heartbeat, an earlier run's status replayed) is
suspect: neither proof of life nor of death, and the reclaimer leaves that
host's frames alone. The last test forges a rendering agent's status against
real signed agents.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from envy.protocol.liveness import LivenessTracker
from envy.protocol.signing import KEY_ENV, keygen, load_key, make_signer
from envy.protocol.status import AgentStatus, write_status
from envy.protocol.status_seal import StatusSeal
from envy.share.atomic import read_json
from envy.share.fs import REAL_FS
from farm import Farm, wait_for
from render_helpers import standin_profile, submit_folder


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def live_tracker(clock: FakeClock, heartbeat: float = 5.0) -> LivenessTracker:
    tracker = LivenessTracker(30.0, clock)
    for counter in range(3):
        tracker.observe("lab1", "run2", counter, heartbeat)
        clock.now += heartbeat
    assert tracker.proven_alive("lab1") and not tracker.is_suspect("lab1")
    return tracker


def test_a_counter_that_goes_back_is_suspect_not_a_beat() -> None:
    clock = FakeClock()
    tracker = live_tracker(clock)
    tracker.observe("lab1", "run2", 0, 5.0)
    assert tracker.is_suspect("lab1") and not tracker.proven_alive("lab1")
    assert "went back" in tracker.suspect_reason("lab1")
    for counter in range(3, 10):  # suspicion lasts dead_after; the real beats go on meanwhile
        clock.now += 5
        tracker.observe("lab1", "run2", counter, 5.0)
    assert not tracker.is_suspect("lab1") and tracker.proven_alive("lab1")


def test_a_counter_racing_ahead_of_the_heartbeat_is_suspect() -> None:
    clock = FakeClock()
    tracker = live_tracker(clock)
    clock.now += 1
    tracker.observe("lab1", "run2", 500, 5.0)  # 498 beats in 6 s of a 5 s heartbeat
    assert tracker.is_suspect("lab1") and "faster than its heartbeat" in tracker.suspect_reason("lab1")


def test_a_caching_client_showing_beats_late_is_not_suspect() -> None:
    clock = FakeClock()
    tracker = live_tracker(clock)
    for _ in range(4):  # the client's attribute cache hid 20 s of beats...
        clock.now += 5
        tracker.observe("lab1", "run2", 2, 5.0)
    clock.now += 1
    tracker.observe("lab1", "run2", 7, 5.0)  # ...then shows them all at once
    assert not tracker.is_suspect("lab1") and tracker.proven_alive("lab1")


def test_an_earlier_runs_status_replayed_is_suspect_not_a_restart() -> None:
    clock = FakeClock()
    tracker = LivenessTracker(30.0, clock)
    tracker.observe("lab1", "run1", 40, 5.0)
    clock.now += 5
    tracker.observe("lab1", "run2", 0, 5.0)  # a real restart
    clock.now += 5
    tracker.observe("lab1", "run2", 1, 5.0)
    assert tracker.proven_alive("lab1")
    clock.now += 5
    tracker.observe("lab1", "run1", 41, 5.0)  # somebody copied an old status back
    assert tracker.is_suspect("lab1") and "replay" in tracker.suspect_reason("lab1")
    assert tracker.sightings["lab1"].nonce == "run2"


def test_a_sealed_status_verifies_and_any_change_or_other_key_does_not(tmp_path: Path) -> None:
    seal = StatusSeal(load_key(keygen(tmp_path / "a.key")))
    other = StatusSeal(load_key(keygen(tmp_path / "b.key")))
    from envy.share.layout import ShareLayout, init_share

    init_share(tmp_path / "share", "student", fs=REAL_FS)
    layout = ShareLayout(tmp_path / "share")
    write_status(layout, AgentStatus(host="lab1-01", nonce="n1", counter=7, heartbeat=0.5), REAL_FS, seal.seal)
    data = read_json(layout.status_file("lab1-01"), REAL_FS, "status")
    assert seal.problem(data) is None and AgentStatus.from_json(data).counter == 7
    assert other.problem(data) is not None
    assert "not sealed" in (seal.problem({k: v for k, v in data.items() if k != "sig"}) or "")
    assert "does not match" in (seal.problem({**data, "nonce": "forged"}) or "")


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=8),
                                                       st.lists(st.integers(), max_size=3)), max_size=8))
def test_the_seal_check_never_raises_on_any_json(data: dict) -> None:
    seal = StatusSeal(b"k" * 32)
    assert seal.problem(data) is not None or seal.seal(data)["sig"] == data.get("sig")
    assert seal.problem(seal.seal(data)) is None or any(v != v for v in data.values())  # NaN never equals


def test_signed_agents_do_not_take_a_forged_status_for_a_restart_and_the_frame_renders_once(
    farm: Farm, tmp_path: Path
) -> None:
    key_path = keygen(tmp_path / "keys" / "signing.key")
    farm.env[KEY_ENV] = str(key_path)
    sender = farm.sender()
    sender.signer = make_signer(load_key(key_path))
    shots = farm.root / "shots"
    shots.mkdir()
    (shots / "shot.0001.frame").write_text("{}")
    renders = farm.root / "renders.txt"
    slow = standin_profile(
        farm.root / "slow.yaml", "slow",  # outside the share: the machine's own, trusted in signed mode
        f"import sys, time; open({str(renders)!r}, 'a').write('render\\n'); time.sleep(10); "
        "open(sys.argv[-1], 'wb').write(b'img'); print('100%')",
    )
    submit_folder(farm.share, shots, renderer="slow", profiles=[slow])
    owner = farm.start_agent("lab1-01", signed=True, profiles=[str(slow)])
    farm.wait_heartbeat(owner)
    sender.send(["lab1 01 render()"])
    wait_for(renders.exists, 30, "lab1-01 to start the frame")
    peer = farm.start_agent("lab1-02", signed=True, profiles=[str(slow)])
    farm.wait_heartbeat(peer)
    sender.send(["lab1 02 render()"])
    wait_for(lambda: "render: 1 worker(s)" in farm.log("lab1-02"), 30, "lab1-02 to join the render")

    # The classmate: lab1-01 "restarted" (a new nonce) and beats, faster than lab1-01 itself.
    path = farm.layout.status_file("lab1-01")
    stop = threading.Event()

    def forge() -> None:
        counter = 0
        while not stop.wait(0.1):
            counter += 1
            forged = {**json.loads(path.read_text() or "{}"), "nonce": "f0f0f0f0", "counter": counter}
            forged.pop("sig", None)
            try:
                path.write_text(json.dumps(forged))
            except OSError:
                pass

    forger = threading.Thread(target=forge, daemon=True)
    forger.start()
    try:
        wait_for(lambda: "status file of lab1-01 is not taken as evidence" in farm.log("lab1-02"), 30,
                 "the peer to refuse the forged status")
        wait_for(lambda: any(".envy~done~" in n for n in (p.name for p in shots.iterdir())), 60,
                 "the frame to complete")
    finally:
        stop.set()
        forger.join(5)
    assert renders.read_text().count("render") == 1, "the frame was rendered twice"
    assert owner.alive() and peer.alive()
    sender.send(["* print('both alive')"])
    wait_for(lambda: "print: both alive" in farm.log("lab1-01") and "print: both alive" in farm.log("lab1-02"), 30,
             "both agents to answer")


def test_envy_io_calls_a_host_with_a_replayed_status_suspect(tmp_path: Path) -> None:
    from envy.share.layout import ShareLayout, init_share
    from envy_io.agents import SUSPECT, AgentBoard, format_agent
    from envy_io.web.views import host_state

    init_share(tmp_path / "share", "student", fs=REAL_FS)
    layout = ShareLayout(tmp_path / "share")
    clock = FakeClock()
    board = AgentBoard(layout, 30.0, fs=REAL_FS, clock=clock)
    for nonce, counter in (("run1", 9), ("run2", 0), ("run2", 1), ("run1", 10)):  # the last is a copied old file
        write_status(layout, AgentStatus(host="lab1-01", nonce=nonce, counter=counter, heartbeat=5.0,
                                         state="idle"), REAL_FS)
        board.refresh()
        clock.now += 5
    view = board.views()[0]
    assert view.verdict == SUSPECT and not view.alive
    assert format_agent(0, view).endswith("(suspect)") and host_state(view, 30.0) == "suspect"
