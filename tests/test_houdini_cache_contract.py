"""Cache jobs on real agent subprocesses, with a stand-in hython running Envy's real runner.

Contract tests with stand-ins, not end-to-end caches: Houdini is not
installed here. tests/stand_ins/hython records its argv and runs the runner
under plain Python with the stand-in ``hou`` module.
"""

from __future__ import annotations

import json
from pathlib import Path

from envy.houdini import api
from envy.houdini.cache_tasks import runner_path
from envy.houdini.submit_cache import submit_cache
from envy.share.fs import REAL_FS
from farm import Farm, wait_for

STAND_IN_HYTHON = Path(__file__).parent / "stand_ins" / "hython"
NODE = "/obj/sim/filecache1"


def write_hip(folder: Path, cook: str) -> Path:
    folder.mkdir(parents=True)
    hip = folder / "smoke.hip"
    parms = {"seed": 0, "sopoutput": "$HIP/cache/smoke.$F4.bgeo.sc", "execute": None}
    hip.write_text(json.dumps({"nodes": {NODE: {"parms": parms, "cook": cook}}}))
    return hip


def names_in(folder: Path, state: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if f".envy~{state}~" in p.name)


def test_hython_contract_agent_caches_wedges_and_a_failing_cache_is_retried_failed_and_kept(tmp_path: Path) -> None:
    farm = Farm(tmp_path)
    record = tmp_path / "record"
    record.mkdir()
    farm.env["ENVY_STANDIN_RECORD"] = str(record)
    good_hip = write_hip(tmp_path / "good", "write")
    bad_hip = write_hip(tmp_path / "bad", "fail")
    good = submit_cache(
        farm.layout,
        api.cache_job(str(good_hip), NODE, {"seed": "$NVJ", "sopoutput": "$HIP/cache/$NVV/w$NVJ/smoke.$F4.bgeo.sc"}),
        wedges=2,
        fs=REAL_FS,
    )
    bad = submit_cache(farm.layout, api.cache_job(str(bad_hip), NODE, {"seed": 5}, max_retries=1), fs=REAL_FS)
    try:
        agent = farm.start_agent("lab2-01", renderers={"hython": {"executable": str(STAND_IN_HYTHON)}})
        farm.wait_heartbeat(agent)
        farm.send("* render()")
        good_tasks, bad_tasks = good.tasks_dir(farm.layout), bad.tasks_dir(farm.layout)
        wait_for(lambda: len(names_in(good_tasks, "done")) == 2, 30, "both wedges to cache")
        for n in (1, 2):
            info = json.loads((tmp_path / "good" / "cache" / "v001" / f"w{n}" / "smoke.envy.json").read_text())
            assert info["parms_changed"]["seed"] == {"before": 0, "after": n}
            assert info["job_number"] == n and info["version"] == "v001" and info["hip"] == str(good_hip)
        runs = [json.loads(p.read_text())["argv"] for p in record.glob("hython.*.json")]
        assert all(argv[1] == str(runner_path()) and ".envy~work~" in argv[2] for argv in runs)

        # The failing cache: hython exits non-zero, the try is retried once, then failed for good...
        wait_for(lambda: names_in(bad_tasks, "failed"), 30, "the failing cache to fail")
        failed = names_in(bad_tasks, "failed")
        assert len(failed) == 1 and failed[0].startswith("cache.0001.envy~failed~2~lab2-01~")
        # ...and the task file is still there, whole, to read or reset.
        task = json.loads((bad_tasks / failed[0]).read_text())
        assert (task["hip"], task["parms"]) == (str(bad_hip), {"seed": 5})
        logs = sorted((farm.layout.jobs_dir / bad.id / "logs").glob("cache.0001.lab2-01.*.log"))
        assert len(logs) == 2
        for log in logs:
            text = log.read_text()
            assert "ENVY_ERROR" in text and "stand-in cook of /obj/sim/filecache1 failed" in text
            assert "renderer reported an error" in text or "renderer exited with code 1" in text
    finally:
        farm.stop_all()


def test_hython_contract_a_crashed_agent_loses_nothing_another_agent_takes_the_cache_over(tmp_path: Path) -> None:
    farm = Farm(tmp_path)
    record = tmp_path / "record"
    record.mkdir()
    farm.env["ENVY_STANDIN_RECORD"] = str(record)
    hip = write_hip(tmp_path / "slow", "wait")
    job = submit_cache(farm.layout, api.cache_job(str(hip), NODE, {"seed": "$NVJ"}), fs=REAL_FS)
    tasks = job.tasks_dir(farm.layout)
    hython = {"hython": {"executable": str(STAND_IN_HYTHON)}}
    try:
        first = farm.start_agent("lab3-01", renderers=hython)
        farm.wait_heartbeat(first)
        farm.send("lab3 01 render()")
        wait_for(lambda: list(record.glob("hython.*.json")), 30, "hython to start on lab3-01")
        first.kill9()  # the agent crashes mid-cache
        working = names_in(tasks, "work")
        assert len(working) == 1 and working[0].startswith("cache.0001.envy~work~0~lab3-01~")
        (hip.parent / "release").write_text("")  # let the orphaned stand-in finish; nobody completes its try
        second = farm.start_agent("lab3-02", renderers=hython)
        farm.wait_heartbeat(second)
        farm.send("lab3 02 render()")
        wait_for(lambda: names_in(tasks, "done"), 40, "lab3-02 to take the cache over and finish it")
        assert names_in(tasks, "done")[0].startswith("cache.0001.envy~done~lab3-02~")
        info = json.loads((hip.parent / "cache" / "smoke.envy.json").read_text())
        assert info["parms_changed"]["seed"]["after"] == 1
    finally:
        (hip.parent / "release").write_text("")  # never leave the orphaned stand-in waiting
        farm.stop_all()
