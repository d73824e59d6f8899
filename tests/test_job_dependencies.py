"""Jobs that wait for other jobs (``envy-io submit ... --after JOB``): real agents, real POV-Ray renders."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from conftest import require_tool
from envy.houdini import api
from envy.houdini.submit_cache import submit_cache
from envy.render.claims import ItemPattern, sort_listing
from envy.render.dependencies import (
    COMPLETE,
    DependencyGate,
    check_no_cycle,
    resolve_after,
)
from envy.render.jobs import Job, JobError, list_jobs, load_job
from envy.share.fs import REAL_FS
from envy_io.cli import main
from farm import Farm, wait_for
from render_helpers import pov_frames, small_povray_profile
from test_houdini_cache_contract import NODE, STAND_IN_HYTHON, write_hip

POV = ItemPattern([".pov"])
GOOD_POV = ("#version 3.7;\ncamera { location <0, 1, -4> look_at <0, 0.5, 0> }\n"
            "light_source { <2, 4, -3> color rgb 1 }\n"
            "sphere { <0, 0.5, 0>, 0.5 pigment { color rgb <1, 0.5, 0.1> } }\n")
BROKEN_POV = "#version 3.7;\nsphere { <0, 0, 0>, 1 pigment { color rgb 1 }\n"  # no closing brace: Parse Error


def cli(farm: Farm, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--share", str(farm.share), *args])
    return code, out.getvalue(), err.getvalue()


def done(folder: Path, pattern: ItemPattern = POV) -> int:
    return len(sort_listing([p.name for p in folder.iterdir()], pattern).done)


def jobs_json(farm: Farm) -> dict[str, dict]:
    code, out, err = cli(farm, "jobs", "--json")
    assert code == 0, err
    return {j["name"]: j for j in json.loads(out)}


@pytest.fixture
def povray_small(farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    require_tool("povray")
    profile = small_povray_profile(tmp_path / "povray-small.yaml", 64, 48)
    # Frame ranges of an animated scene too, as the built-in profile (at the same small size).
    profile.write_text(profile.read_text() + "frame_range: true\nrange_argv: ['+I\"{scene}\"', +W64, +H48, -A, -D, "
                       "+V, +FN, +WT1, +KFI0, +KFF9999, +KI0, +KF9999, '+SF{start}', '+EF{end}']\n")
    config = farm.root / "config"
    config.mkdir(exist_ok=True)
    (config / "config.yaml").write_text(f"profiles: ['{profile}']\n")
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(config))
    return profile


def order_in_log(log: str) -> list[tuple[str, str]]:
    """(event, job name) in the order the agent logged them: rendering / completed."""
    return re.findall(r"worker \d+: (rendering|completed) .* of (\S+)", log)


def test_a_cache_then_its_frames_then_a_range_each_waits_for_the_one_before(
    farm: Farm, tmp_path: Path, povray_small: Path
) -> None:
    """hython (stand-in, contract) -> POV-Ray frame folder -> POV-Ray frame range, the later ones at higher priority."""
    hip = write_hip(tmp_path / "fx", "write")
    cache = submit_cache(farm.layout, api.cache_job(str(hip), NODE, {"seed": 1}), name="fxcache", fs=REAL_FS)
    frames = pov_frames(tmp_path / "shot010" / "frames", 2)
    code, out, err = cli(farm, "submit", str(frames), "--renderer", "povray-small", "--priority", "80",
                         "--after", "fxcache")
    assert code == 0, err
    scene = tmp_path / "anim" / "ball.pov"
    scene.parent.mkdir()
    scene.write_text("#version 3.7;\ncamera { location <0, 1, -4> look_at <0, 0.5, 0> }\n"
                     "light_source { <2, 4, -3> color rgb 1 }\n"
                     "sphere { <frame_number * 0.3, 0.5, 0>, 0.5 pigment { color rgb <1, 0.5, 0.1> } }\n")
    code, _, err = cli(farm, "submit", str(scene), "--renderer", "povray-small", "--frames", "1-2",
                       "--priority", "90", "--output", str(tmp_path / "out"), "--after", "shot010," + cache.id)
    assert code == 0, err
    jobs = {j.name: j for j in list_jobs(farm.layout, REAL_FS)[0]}
    assert jobs["shot010"].after == [cache.id]
    assert jobs["ball"].after == [jobs["shot010"].id, cache.id]
    assert jobs_json(farm)["ball"]["state"] == "waiting for shot010, fxcache"

    agent = farm.start_agent("lab1-01", profiles=[str(povray_small)],
                             renderers={"hython": {"executable": str(STAND_IN_HYTHON)}})
    farm.wait_heartbeat(agent)
    farm.send("* render()")
    ball_tasks = jobs["ball"].tasks_dir(farm.layout)
    wait_for(lambda: done(ball_tasks, ItemPattern([".json"])) == 2, 90, "the range job to finish last")
    order = order_in_log(farm.log("lab1-01"))
    last_of = {name: max(i for i, (ev, n) in enumerate(order) if n == name and ev == "completed")
               for name in ("fxcache", "shot010")}
    first_of = {name: min(i for i, (ev, n) in enumerate(order) if n == name and ev == "rendering")
                for name in ("shot010", "ball")}
    assert last_of["fxcache"] < first_of["shot010"], order
    assert last_of["shot010"] < first_of["ball"], order
    assert done(frames) == 2 and len(list((tmp_path / "out").glob("*.png"))) == 2
    states = jobs_json(farm)
    assert [states[n]["state"] for n in ("fxcache", "shot010", "ball")] == ["complete"] * 3


def test_a_failed_dependency_holds_the_job_with_the_reason(farm: Farm, tmp_path: Path, povray_small: Path) -> None:
    broken = tmp_path / "shot020" / "frames"
    broken.mkdir(parents=True)
    (broken / "shot020.0001.pov").write_text(BROKEN_POV)
    assert cli(farm, "submit", str(broken), "--renderer", "povray-small", "--retries", "0")[0] == 0
    comp = pov_frames(tmp_path / "comp020" / "frames", 1)
    code, _, err = cli(farm, "submit", str(comp), "--renderer", "povray-small", "--priority", "90",
                       "--after", "shot020")
    assert code == 0, err
    agent = farm.start_agent("lab1-01", profiles=[str(povray_small)])
    farm.wait_heartbeat(agent)
    farm.send("* render()")
    wait_for(lambda: jobs_json(farm)["shot020"]["state"] == "complete with failures", 60, "shot020 to fail")
    # The marker: a later job at the lowest priority. Once it is done the agent has
    # looked at comp020 (higher priority) many times and left it alone.
    marker = pov_frames(tmp_path / "marker" / "frames", 1)
    assert cli(farm, "submit", str(marker), "--renderer", "povray-small", "--priority", "0", "--name", "marker")[0] == 0
    wait_for(lambda: done(marker) == 1, 60, "the marker job's frame")
    assert done(comp) == 0 and "of comp020" not in farm.log("lab1-01")
    assert jobs_json(farm)["comp020"]["state"] == "held: shot020 failed"
    code, out, _ = cli(farm, "jobs")
    assert code == 0 and re.search(r"held: shot020 failed .*comp020", out), out
    # The agent says what the job left waits for, not a plain "queue empty".
    wait_for(lambda: "idle (comp020 held: shot020 failed)" in cli(farm, "status")[1], 30,
             "the agent's status to name the held job")
    # Fixing the cause (a good scene, then reset) lets the waiting job go.
    next(broken.glob("shot020.0001.envy~failed~*.pov")).write_text(GOOD_POV)
    assert cli(farm, "reset", "shot020", "--failed")[0] == 0
    wait_for(lambda: done(comp) == 1, 90, "comp020 to render once shot020 is complete")


def test_unknown_self_and_cancelled_dependencies_are_refused_in_one_line(farm: Farm, tmp_path: Path,
                                                                        povray_small: Path) -> None:
    a = pov_frames(tmp_path / "shota" / "frames", 1)
    b = pov_frames(tmp_path / "shotb" / "frames", 1)
    assert cli(farm, "submit", str(a), "--renderer", "povray-small")[0] == 0
    before = sorted(p.name for p in farm.layout.jobs_dir.iterdir())
    for after, says in (("nosuch", "--after nosuch: no such job (known: shota)"),
                        ("shotb", "--after shotb: a job cannot wait for itself")):
        code, _, err = cli(farm, "submit", str(b), "--renderer", "povray-small", "--after", after)
        assert code == 2 and err.count("\n") == 1 and says in err, err
    assert cli(farm, "cancel", "shota")[0] == 0
    code, _, err = cli(farm, "submit", str(b), "--renderer", "povray-small", "--after", "shota")
    assert code == 2 and "cancelled" in err
    assert sorted(p.name for p in farm.layout.jobs_dir.iterdir()) == before


def _job(job_id: str, name: str, after: list[str]) -> Job:
    return Job(id=job_id, name=name, kind="frames", renderer="povray", source=f"/p/{name}",
               extensions=[".pov"], after=after)


def test_a_loop_of_waiting_jobs_is_refused_naming_it() -> None:
    a = _job("20260101-000000-a-0001", "a", ["20260101-000000-b-0002"])
    b = _job("20260101-000000-b-0002", "b", ["20260101-000000-c-0003"])
    c = _job("20260101-000000-c-0003", "c", [])
    check_no_cycle(c.id, [], [a, b])
    with pytest.raises(JobError, match=r"loop of jobs waiting for each other: c -> a -> b -> c"):
        check_no_cycle(c.id, [a.id], [a, b, c])
    assert resolve_after([a, b, c], ["a,b", "a"]) == [a.id, b.id]


def test_gate_rereads_a_waiting_job_at_most_every_few_seconds_and_a_complete_one_never() -> None:
    now = [0.0]
    states = {"dep": ("cache", "active")}
    reads: list[str] = []

    def state_of(job_id: str) -> tuple[str, str]:
        reads.append(job_id)
        return states[job_id]

    gate = DependencyGate(state_of, lambda: 3.0, clock=lambda: now[0])
    job = _job("20260101-000000-r-0001", "render", ["dep"])
    for _ in range(50):
        assert gate.blocked(job) == "waiting for cache"
    assert reads == ["dep"]
    states["dep"] = ("cache", COMPLETE)
    now[0] = 2.9
    assert gate.blocked(job) == "waiting for cache" and len(reads) == 1
    now[0] = 3.1
    assert gate.blocked(job) == "" and len(reads) == 2
    states["dep"] = ("cache", "active")  # reset after release: the job already released stays released
    now[0] = 100.0
    assert gate.blocked(job) == "" and len(reads) == 2
    other = _job("20260101-000000-s-0002", "other", ["dep"])
    assert gate.blocked(other) == "" and len(reads) == 2  # a dependency seen complete is not read again


def test_gate_reads_one_dependency_once_for_all_the_jobs_waiting_for_it() -> None:
    reads: list[str] = []
    gate = DependencyGate(lambda i: (reads.append(i), ("cache", "active"))[1], lambda: 3.0, clock=lambda: 0.0)
    waiting = [_job(f"20260101-000000-w{n}-0001", f"w{n}", ["dep"]) for n in range(20)]
    for _ in range(10):
        assert all(gate.blocked(j) == "waiting for cache" for j in waiting)
    assert reads == ["dep"]


def test_husk_jobs_record_what_they_wait_for(farm: Farm, tmp_path: Path) -> None:
    pytest.importorskip("pxr", reason="usd-core (the 'test' extra) writes the USD files")
    from envy.usd.submit_usd import UsdSubmitRequest, submit_usd_request
    from test_usd_check import write_shot

    hip = write_hip(tmp_path / "fx", "write")
    cache = submit_cache(farm.layout, api.cache_job(str(hip), NODE, {"seed": 1}), name="fxcache", fs=REAL_FS)
    folder = tmp_path / "usd"
    folder.mkdir()
    write_shot(folder / "shot.0001.usda", 1)
    job = submit_usd_request(farm.layout, UsdSubmitRequest(str(folder), after=["fxcache"]), REAL_FS)
    assert load_job(farm.layout, job.id, REAL_FS).after == [cache.id]
    with pytest.raises(JobError, match="no such job"):
        submit_usd_request(farm.layout, UsdSubmitRequest(str(folder), name="x", after=["nope"]), REAL_FS)
