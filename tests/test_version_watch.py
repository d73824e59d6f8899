"""An agent run from the share copy moves to a newly published version by itself (issue 13 Must-hold 2).

A real agent subprocess is started the way its launcher starts it (the
``ENVY_APP_*`` variables), rendering a job of stand-in frames (said so: the
farm is under test, not the renderer). A new version is published while a
frame renders: the frame in hand finishes, no new frame is taken, and the agent
exits with 75 so the launcher can start the new version. Nothing is given back
half-rendered, nothing is lost. (The PEX copy's own move, through the launcher,
is tests/test_app_share_copy.py.)
"""

from __future__ import annotations

from pathlib import Path

from envy.app.layout import AppLayout
from envy.app.protocol import NEWEST_PROTOCOL, OLDEST_PROTOCOL
from envy.app.version_watch import VersionWatch
from envy.share.atomic import atomic_write_json
from envy.share.fs import REAL_FS
from farm import Farm, wait_for
from render_helpers import standin_profile, submit_folder


def publish_pointer(share: Path, version: str, previous: str | None) -> None:
    app = AppLayout(share)
    app.current.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(app.current, {"version": version, "previous": previous}, REAL_FS)


def test_the_watch_reads_the_pointer_at_most_once_per_interval(tmp_path: Path) -> None:
    now = [0.0]
    publish_pointer(tmp_path, "v1", None)
    watch = VersionWatch(AppLayout(tmp_path), "v1", REAL_FS, every=30, clock=lambda: now[0])
    assert watch.newer() is None
    publish_pointer(tmp_path, "v2", "v1")
    now[0] += 10
    assert watch.newer() is None  # not read again yet: one small read per 30 s
    now[0] += 21
    assert watch.newer() == "v2"
    (AppLayout(tmp_path).current).write_text("{not json")
    assert watch.newer() == "v2"  # decided: a broken pointer later does not undo it


def test_an_agent_from_the_copy_finishes_its_frame_then_restarts_into_the_new_version_standin_renderer(
    farm: Farm,
) -> None:
    publish_pointer(farm.share, "v1", None)
    shots = farm.root / "shots"
    shots.mkdir()
    for i in range(1, 4):
        (shots / f"shot.{i:04d}.frame").write_text("{}")
    started = farm.root / "started"
    slow = standin_profile(
        farm.root / "slow.yaml", "slow",
        f"import sys, time; open({str(started)!r}, 'a').write('x'); time.sleep(3); "
        "open(sys.argv[-1], 'wb').write(b'img'); print('100%')",
    )
    submit_folder(farm.share, shots, renderer="slow", profiles=[slow])
    farm.env.update(ENVY_APP_LAUNCHER=str(farm.root / "envy.pyz"), ENVY_APP_VERSION="v1", ENVY_APP_CHECK_S="0.3")
    agent = farm.start_agent("lab1-01", None, ["--render"], profiles=[str(slow)])
    wait_for(started.exists, 30, "the first frame to start")
    assert (farm.status("lab1-01") or {}).get("protocols") == [OLDEST_PROTOCOL, NEWEST_PROTOCOL]
    publish_pointer(farm.share, "v2", "v1")  # the admin's `envy app update`

    code = agent.wait_exit(timeout=40)
    assert code == 75, farm.log("lab1-01")[-2000:]
    names = sorted(p.name for p in shots.iterdir())
    done = [n for n in names if ".envy~done~" in n]
    assert len(done) == 1 and started.read_text() == "x", names  # the frame in hand finished, no other began
    assert sum(1 for n in names if "~work~" in n) == 0  # nothing left claimed
    assert "moving to envy v2 once the frame in hand is done" in farm.log("lab1-01")
    assert "version v2 is published on the share: restarting into it" in farm.log("lab1-01")
