"""Cache jobs: the job.json schema and its one-line errors, $NVJ wedges, $NVV versions, duplicates,
submitting task files, and how an agent plans a task (the hython argv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envy.config import Config
from envy.houdini import api
from envy.houdini.cache_tasks import plan_cache_task, runner_path
from envy.houdini.cli_cache import run_cache
from envy.houdini.schema import (
    CacheJobError,
    cache_job_from_json,
    duplicate_job,
    load_cache_job,
    save_cache_job,
    substitute,
)
from envy.houdini.submit_cache import submit_cache
from envy.houdini.versions import next_version_folder, reserve_version_folder
from envy.render.claims import Claim, ItemName
from envy.render.jobs import list_jobs
from envy.render.plans import PlanInput
from envy.render.profiles import load_profiles
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share

STAND_IN_HYTHON = Path(__file__).parent / "stand_ins" / "hython"


@pytest.fixture
def layout(tmp_path: Path) -> ShareLayout:
    init_share(tmp_path / "share", "student", fs=REAL_FS)
    return ShareLayout(tmp_path / "share")


@pytest.fixture
def hip(tmp_path: Path) -> Path:
    path = tmp_path / "proj" / "smoke.hip"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    return path


def write_job(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def tasks_of(layout: ShareLayout, job_id: str) -> dict[str, dict]:
    folder = layout.jobs_dir / job_id / "tasks"
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"node": "/obj/a"}, "missing key 'hip'"),
        ({"hip": "a.hip", "node": "/obj/a", "hipfile": "x"}, "unknown key 'hipfile' (known keys: hip, node"),
        ({"hip": "a.hip", "node": "obj/a"}, "'node' must be an absolute Houdini node path"),
        ({"hip": "a.hip", "node": "/obj/a/../b"}, "'node' must be an absolute Houdini node path"),
        ({"hip": "a.hip", "node": "/obj/a", "parms": {"seed": {"x": 1}}}, "'parms.seed' must be text, a number"),
        ({"hip": "a.hip", "node": "/obj/a", "parms": {"se ed": 1}}, "'parms.se ed' is not a parameter name"),
        ({"hip": "a.hip", "node": "/obj/a", "parms": ["seed"]}, "'parms' must map parameter names"),
        ({"hip": "a.hip", "node": "/obj/a", "priority": "high"}, "'priority' must be a whole number from 0 to 100"),
        ({"hip": "a.hip", "node": "/obj/a", "wedges": 0}, "'wedges' must be a whole number from 1"),
        ({"hip": "a.blend", "node": "/obj/a"}, "'hip' must be a HIP file"),
        ({"hip": "a.hip", "node": "/obj/a", "button": "execute()"}, "'button' must be a parameter name"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_schema_errors_are_one_line_naming_file_and_key(tmp_path: Path, data: object, message: str) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CacheJobError) as err:
        load_cache_job(path)
    text = str(err.value)
    assert message in text and text.startswith(str(path)) and "\n" not in text


def test_not_json_and_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(CacheJobError, match="job file not found"):
        load_cache_job(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"hip": ')
    with pytest.raises(CacheJobError, match="not valid JSON"):
        load_cache_job(tmp_path / "bad.json")


def test_nvj_becomes_the_job_number() -> None:
    assert substitute("$NVJ", 3) == 3 and isinstance(substitute("$NVJ", 3), int)
    assert substitute("${NVJ}", 4) == 4
    assert substitute("$HIP/wedge$NVJ/x.$F4.bgeo.sc", 7) == "$HIP/wedge7/x.$F4.bgeo.sc"
    assert substitute("w${NVJ}_seed", 2) == "w2_seed"
    assert substitute("$NVJOB stays", 2) == "$NVJOB stays"  # another variable, not ours
    assert substitute(["$NVJ", "$NVJ", 0.5], 5) == [5, 5, 0.5]
    assert substitute(1.5, 9) == 1.5 and substitute(True, 9) is True


def test_wedges_make_that_many_tasks_numbered_one_to_n(tmp_path: Path, layout: ShareLayout, hip: Path) -> None:
    job_file = write_job(tmp_path / "job.json", {
        "hip": str(hip), "node": "/obj/sim/filecache1",
        "parms": {"seed": "$NVJ", "label": "wedge $NVJ of ten", "dissipation": 0.25},
    })
    said: list[str] = []
    assert run_cache(layout.root, job_file, 10, say=said.append, fs=REAL_FS) == 0
    jobs, _ = list_jobs(layout, fs=REAL_FS)
    assert len(jobs) == 1 and jobs[0].kind == "tasks" and jobs[0].renderer == "hython"
    tasks = tasks_of(layout, jobs[0].id)
    assert list(tasks) == [f"cache.{n:04d}.json" for n in range(1, 11)]
    assert [t["parms"]["seed"] for t in tasks.values()] == list(range(1, 11))
    assert tasks["cache.0003.json"]["parms"] == {"seed": 3, "label": "wedge 3 of ten", "dissipation": 0.25}
    assert tasks["cache.0003.json"]["parms_as_written"]["seed"] == "$NVJ"
    first = tasks["cache.0001.json"]
    assert (first["job_number"], first["job_count"], first["hip"], first["type"]) == (1, 10, str(hip), "hython")
    assert first["created_at"] and first["job_file"] == str(job_file)
    assert "10 cache jobs" in said[0]


def test_wedges_from_the_job_file_and_missing_hip_writes_nothing(
    tmp_path: Path, layout: ShareLayout, hip: Path
) -> None:
    job = cache_job_from_json({"hip": str(hip), "node": "/obj/a", "wedges": 3})
    assert len(tasks_of(layout, submit_cache(layout, job, fs=REAL_FS).id)) == 3
    gone = write_job(tmp_path / "gone.json", {"hip": str(tmp_path / "missing.hip"), "node": "/obj/a"})
    with pytest.raises(CacheJobError, match=r"gone.json: HIP file .*missing.hip not found"):
        run_cache(layout.root, gone, 2, fs=REAL_FS)
    assert len(list_jobs(layout, fs=REAL_FS)[0]) == 1


def test_version_folders_count_up_and_never_reuse_a_number(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "smoke"
    assert next_version_folder(root) == root / "v001"
    assert reserve_version_folder(root) == root / "v001"
    (root / "v003").mkdir()
    (root / "notes").mkdir()
    assert reserve_version_folder(root) == root / "v004"
    assert sorted(p.name for p in root.iterdir()) == ["notes", "v001", "v003", "v004"]


def test_nvv_reserves_the_next_version_folder_per_submit(tmp_path: Path, layout: ShareLayout, hip: Path) -> None:
    job = api.cache_job(str(hip), "/obj/sim/filecache1",
                        {"sopoutput": "$HIP/cache/smoke/$NVV/w$NVJ/smoke.$F4.bgeo.sc"})
    first = submit_cache(layout, job, wedges=2, fs=REAL_FS)
    second = submit_cache(layout, job, fs=REAL_FS)
    assert (hip.parent / "cache" / "smoke" / "v001").is_dir() and (hip.parent / "cache" / "smoke" / "v002").is_dir()
    assert first.output == f"{hip.parent}/cache/smoke/v001" and second.settings["version"] == "v002"
    task = tasks_of(layout, first.id)["cache.0002.json"]
    assert task["parms"]["sopoutput"] == "$HIP/cache/smoke/v001/w2/smoke.$F4.bgeo.sc"  # $HIP and $F4 left to Houdini
    assert task["version"] == "v001"
    bad = api.cache_job(str(hip), "/obj/a", {"file": "$JOB/cache/$NVV/x.bgeo"})
    with pytest.raises(CacheJobError, match=r"only \$HIP and \$HIPNAME are expanded"):
        submit_cache(layout, bad, fs=REAL_FS)


def test_duplicate_copies_with_changes_and_validates(tmp_path: Path, hip: Path) -> None:
    job = api.cache_job(str(hip), "/obj/sim/filecache1", {"seed": "$NVJ", "substeps": 1}, name="smoke")
    copy = api.duplicate(job, {"substeps": 4, "seed": None, "/obj/sim/pyro/dissipation": 0.1}, name="smoke fine")
    assert dict(copy.parms) == {"substeps": 4, "/obj/sim/pyro/dissipation": 0.1}
    assert (copy.name, copy.hip, copy.node) == ("smoke fine", job.hip, job.node)
    assert dict(job.parms) == {"seed": "$NVJ", "substeps": 1}  # the original is untouched
    assert dict(duplicate_job(job, {"x": 1}, replace_parms=True).parms) == {"x": 1}
    with pytest.raises(CacheJobError, match="'node' must be an absolute"):
        api.duplicate(job, node="filecache1")
    with pytest.raises(CacheJobError, match="unknown key 'colour'"):
        api.duplicate(job, colour="red")
    save_cache_job(copy, tmp_path / "copy.json", REAL_FS)
    assert load_cache_job(tmp_path / "copy.json") == copy


def plan_input(layout: ShareLayout, job_id: str, task_name: str, remap: tuple[str, ...] = ()) -> PlanInput:
    jobs, _ = list_jobs(layout, fs=REAL_FS)
    job = next(j for j in jobs if j.id == job_id)
    claim = Claim(job.tasks_dir(layout), ItemName(task_name[: -len(".json")], ".json", "pending"))
    config = Config(renderers={"hython": {"executable": str(STAND_IN_HYTHON)}}, remap=remap,
                    project_roots=(str(layout.root.parent),))  # the test's HIP files are beside the share
    return PlanInput(job, claim, load_profiles(), config, "n0nce", layout.jobs_dir / job.id, REAL_FS)


def test_plan_runs_the_packaged_runner_on_the_claimed_task_file(tmp_path: Path, layout: ShareLayout, hip: Path) -> None:
    job = submit_cache(layout, api.cache_job(str(hip), "/obj/a", {"seed": "$NVJ"}), wedges=2, fs=REAL_FS)
    plan = plan_cache_task(plan_input(layout, job.id, "cache.0002.json"), tasks_of(layout, job.id)["cache.0002.json"])
    claimed = job.tasks_dir(layout) / "cache.0002.json"
    assert plan.argv == [str(STAND_IN_HYTHON), str(runner_path()), str(claimed)]
    assert runner_path().is_file() and runner_path().parent.name == "houdini"
    assert plan.cwd == hip.parent and plan.profile is not None and plan.profile.name == "hython"
    assert plan.profile.progress and plan.outputs == []


def test_plan_passes_remapped_paths_as_json_data(tmp_path: Path, layout: ShareLayout, hip: Path) -> None:
    odd = 'C:\\not\\a\\remapped "path"; import os'
    job = api.cache_job("Z:/proj/smoke.hip", "/obj/a", {"file": "Z:/proj/cache/x.$F4.bgeo.sc", "note": odd},
                        remap=[f"Z:/proj,{hip.parent}"])
    record = submit_cache(layout, job, local_os="linux", fs=REAL_FS)
    task = tasks_of(layout, record.id)["cache.0001.json"]
    plan = plan_cache_task(plan_input(layout, record.id, "cache.0001.json"), task)
    assert plan.argv[3] == "--local"
    local = json.loads(plan.argv[4])
    assert local == {"hip": str(hip), "parms": {"file": f"{hip.parent}/cache/x.$F4.bgeo.sc"}}
    assert task["parms"]["note"] == odd  # not a path under a rule: never touched


def test_documented_examples_stay_valid() -> None:
    docs = Path(__file__).parent.parent / "docs"
    job = load_cache_job(docs / "examples" / "cache_job.json")
    assert job.wedges == 10 and job.parms["seed"] == "$NVJ" and job.uses_version()
    compile((docs / "examples" / "hda_callback.py").read_text(), "hda_callback.py", "exec")


def test_check_only_checks_everything_and_writes_nothing(tmp_path: Path, layout: ShareLayout, hip: Path) -> None:
    job_file = write_job(tmp_path / "job.json", {
        "hip": "P:/fx/smoke.hip", "node": "/obj/a", "parms": {"file": "$HIP/cache/$NVV/x.$F4.bgeo.sc"}})
    said: list[str] = []
    # P:/ is this machine's config rule only: it finds the HIP file here but is not stored in the job.
    here = [f"P:/fx,{hip.parent}"]
    assert run_cache(None, job_file, 3, check_only=True, local_remap=here, say=said.append, fs=REAL_FS) == 0
    assert "OK: 3 cache jobs" in said[0] and "nothing submitted" in said[0]
    assert list_jobs(layout, fs=REAL_FS)[0] == [] and not (hip.parent / "cache").exists()
    run_cache(layout.root, job_file, 1, local_remap=here, say=said.append, fs=REAL_FS)
    job = list_jobs(layout, fs=REAL_FS)[0][0]
    assert job.remap == [] and job.output == "P:/fx/cache/v001" and (hip.parent / "cache" / "v001").is_dir()
    with pytest.raises(CacheJobError, match="HIP file P:/fx/smoke.hip not found"):
        run_cache(None, job_file, check_only=True, fs=REAL_FS)


def test_api_submits_to_the_share_given_or_configured(tmp_path: Path, layout: ShareLayout, hip: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    job = api.job_for_node(type("Node", (), {"path": lambda self: "/obj/sim/filecache1"})(), {"seed": "$NVJ"},
                           hip=str(hip), wedges=4)
    assert api.check(job).wedges == 4
    record = api.submit(job, share=layout.root, paused=True)
    assert (record.state, record.settings["wedges"]) == ("paused", 4)
    monkeypatch.setenv("ENVY_SHARE", str(layout.root))
    assert api.submit(api.duplicate(job, wedges=1)).settings["wedges"] == 1
    monkeypatch.delenv("ENVY_SHARE")
    with pytest.raises(CacheJobError, match="no Envy share"):
        api.submit(job)
