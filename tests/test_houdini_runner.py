"""The cache runner (envy/houdini/runner.py) under plain Python against a stand-in ``hou`` module.

Contract tests with stand-ins, not end-to-end caches: Houdini is not
installed here. tests/stand_ins/hou.py implements only the calls the runner
makes; pressing ``execute`` writes the node's raw parameter values and every
``set`` call into the cache file, so the test sees exactly what arrived.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from envy.houdini.cache_tasks import HYTHON_PROFILE, runner_path
from envy.render.progress import ProgressParser

STAND_INS = Path(__file__).parent / "stand_ins"
NASTY = 'it\'s "quoted" \\back\\slashed\\ ; import os; os.system("touch pwned") #'
NODE = "/obj/sim/filecache1"


def write_hip(folder: Path, cook: str = "write", **extra_parms: object) -> Path:
    parms = {"seed": 0, "note": "", "sopoutput": "$HIP/cache/v001/smoke.$F4.bgeo.sc", "execute": None,
             "t": [0, 0, 0], **extra_parms}
    hip = folder / "smoke.hip"
    hip.write_text(json.dumps({"nodes": {NODE: {"parms": parms, "keyframes": ["seed"], "cook": cook}}}))
    return hip


def write_task(folder: Path, hip: Path, **changes: object) -> Path:
    task = {
        "type": "hython", "format": 1, "name": "smoke", "hip": str(hip), "node": NODE, "button": "execute",
        "parms": {"seed": 3, "note": NASTY, "t": [1, 2.5, True]}, "parms_as_written": {"seed": "$NVJ"},
        "output_parm": None, "job_number": 3, "job_count": 10, "version": "v001", "version_folder": None,
        "created_at": "2026-01-02T03:04:05Z", "created_by": "student", "created_host": "lab1-01",
        "job_file": "Z:/proj/job.json", "comment": "denser smoke",
    }
    task.update(changes)
    path = folder / "cache.0003.envy~work~0~lab1-01~42~abcd.json"
    path.write_text(json.dumps(task))
    return path


def run_runner(task: Path, *extra: str, with_hou: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if with_hou:
        env["PYTHONPATH"] = str(STAND_INS)
    return subprocess.run([sys.executable, str(runner_path()), str(task), *extra], capture_output=True, text=True,
                          env=env, cwd=task.parent, timeout=60)


def test_hython_contract_runner_sets_values_verbatim_presses_the_button_and_describes_the_cache(tmp_path: Path) -> None:
    hip = write_hip(tmp_path)
    result = run_runner(write_task(tmp_path, hip))
    assert result.returncode == 0, result.stdout + result.stderr
    cache = json.loads((tmp_path / "cache" / "v001" / "smoke.0001.bgeo.sc").read_text())
    calls = {c["parm"]: c for c in cache["set_calls"]}
    assert calls["note"] == {"parm": "note", "value": NASTY, "type": "str"}  # verbatim, as a value
    assert calls["seed"] == {"parm": "seed", "value": 3, "type": "int"}  # $NVJ arrived as a whole number
    assert calls["t"] == {"parm": "t", "value": [1, 2.5, 1], "type": "tuple"}  # a tuple; true became 1
    assert not (tmp_path / "pwned").exists()

    info = json.loads((tmp_path / "cache" / "v001" / "smoke.envy.json").read_text())
    assert info["parms_changed"]["seed"] == {"before": 0, "after": 3}
    assert info["parms_changed"]["note"] == {"before": "", "after": NASTY}
    assert (info["hip"], info["node"], info["job_created_at"], info["job_number"], info["comment"]) == (
        str(hip), NODE, "2026-01-02T03:04:05Z", 3, "denser smoke")
    assert info["output"] == str(tmp_path / "cache" / "v001" / "smoke.0001.bgeo.sc")

    parser = ProgressParser(HYTHON_PROFILE)
    parser.feed(result.stdout + result.stderr)
    parser.flush()
    assert parser.percent == 100.0 and parser.error is None
    assert all(line.startswith("ENVY_PROGRESS ") for line in result.stdout.splitlines())


def test_hython_contract_runner_uses_local_paths_from_the_agent(tmp_path: Path) -> None:
    hip = write_hip(tmp_path)
    task = write_task(tmp_path, "Z:/proj/smoke.hip", parms={"sopoutput": "Z:/proj/cache/x.$F4.bgeo.sc"})
    local = {"hip": str(hip), "parms": {"sopoutput": str(tmp_path / "out" / "x.$F4.bgeo.sc")}}
    result = run_runner(task, "--local", json.dumps(local))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "x.0001.bgeo.sc").is_file()
    info = json.loads((tmp_path / "out" / "x.envy.json").read_text())
    assert (info["hip"], info["hip_opened"]) == ("Z:/proj/smoke.hip", str(hip))


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("ENVY_ERROR ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_hython_contract_runner_fails_with_one_error_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    cases = [
        ("fail", {}, "stand-in cook of /obj/sim/filecache1 failed"),
        ("error", {}, "reported: Stand-in error"),
        ("write", {"node": "/obj/nope"}, "no node /obj/nope in"),
        ("write", {"parms": {"missing": 1}}, "no parameter missing on /obj/sim/filecache1"),
        ("write", {"button": "render"}, "has no button 'render'"),
        ("write", {"output_parm": "outfile"}, "no output file parameter (tried outfile)"),
        (None, {}, "cannot open"),
    ]
    for i, (cook, changes, message) in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        hip = write_hip(folder, cook) if cook else folder / "absent.hip"
        result = run_runner(write_task(folder, hip, **changes))
        assert result.returncode == 1, (changes, result.stderr)
        assert message in error_line(result), (changes, result.stderr)
        assert not (folder / "cache" / "v001" / "smoke.envy.json").exists()


def test_hython_contract_runner_rejects_a_bad_task_and_needs_hou(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "husk"}))
    result = run_runner(bad)
    assert result.returncode == 2 and "not a hython task file" in error_line(result)
    result = run_runner(write_task(tmp_path, write_hip(tmp_path)), with_hou=False)
    assert result.returncode == 2 and "run this script with Houdini's hython" in error_line(result)


def test_runner_imports_only_the_standard_library_and_hou_and_parses_as_python_3_7() -> None:
    tree = ast.parse(runner_path().read_text(encoding="utf-8"), feature_version=(3, 7))  # Houdini 18.5's Python
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - {"hou"} <= set(sys.stdlib_module_names), imported
    assert "envy" not in imported
