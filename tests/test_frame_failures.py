"""Failures explain themselves, frames are requeued as meant, jobs finish (issue 11 §1, §2, §3).

Real POV-Ray renders on real agent subprocesses: a scene with a parse error
fails with POV-Ray's own words; ``jobs JOB --frames`` and ``log JOB FRAME``
show it; a re-exported scene replaces the broken frame (counted once, never
rendered twice); ``reset --frames`` requeues exactly the frames named.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import require_tool
from envy.render.claims import ItemPattern, reset_items, sort_listing
from envy.render.plans import WorkPlan
from envy.render.profiles import load_profiles
from envy.render.progress import ProgressParser
from envy.render.worker import failure_reason
from envy.share.fs import REAL_FS
from envy_io.cli import main
from farm import Farm, wait_for
from render_helpers import pov_frames

DATA = Path(__file__).parent / "data" / "renderer_output"
BROKEN = "// frame 3, exported broken\nsphere { 0, 1\ncamera { location <0, 0, -3> look_at 0 }\n"


def cli(farm: Farm, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--share", str(farm.share), *args])
    return code, out.getvalue(), err.getvalue()


@dataclass(frozen=True)
class Ended:
    """How a child ended (the ChildOutcome protocol), for the reason tests on recorded output."""

    returncode: int | None
    killed_reason: str | None = None


def recorded(name: str) -> str:
    text = (DATA / name).read_text()
    return text.split("# --- output below, byte for byte ---\n", 1)[1]


# -- the reason, from recorded output -----------------------------------------------------------
def _plan() -> WorkPlan:
    profile = load_profiles([])["povray"]
    return WorkPlan(argv=["povray"], cwd=Path("."), label="shot.0003", profile=profile)


def _reason(output: str, code: int) -> str | None:
    plan = _plan()
    parser = ProgressParser(plan.profile)  # type: ignore[arg-type]
    parser.feed(output)
    parser.flush()
    return failure_reason(plan, Ended(code), parser, REAL_FS)


def test_recorded_povray_parse_error_reason_is_its_own_error_line_not_the_exit_code() -> None:
    reason = _reason(recorded("povray_parse_error.txt"), 1)
    assert reason is not None and "Parse Error: No matching } in 'sphere'" in reason
    assert "exited with code" not in reason


WRAPPED = (  # POV-Ray hard-wraps at 80 columns, as it did in this test's own render (a long temp path)
    "==== [Parsing...] ==========================================================\n"
    "File '/tmp/pytest-of-root/pytest-177/test_povray_parse_error_explai0/shot020/fra\n"
    "mes/shot010.0003.envy~work~0~lab1-01~28715~5a409c39.pov' line 3: Parse Error: No\n"
    " matching } in 'sphere', camera found instead\n"
    "Fatal error in parser: Cannot parse input.\nRender failed\n"
)


def test_wrapped_povray_error_is_joined_and_names_the_frame_not_the_claim() -> None:
    assert _reason(WRAPPED, 1) == ("renderer reported an error: File 'shot010.0003.pov' line 3: "
                                   "Parse Error: No matching } in 'sphere', camera found instead")


def test_unmatched_failure_reason_is_the_last_output_lines_then_the_exit_code() -> None:
    reason = _reason("loading scene\nout of licences, try later\nbye\n", 4)
    assert reason == "renderer exited with code 4; its last output: loading scene | out of licences, try later | bye"
    assert _reason("", 4) == "renderer exited with code 4"


def test_reset_and_listing_count_a_re_exported_frame_once(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ["s.0001.envy~done~h1~aa.pov", "s.0002.envy~failed~3~h1~aa.pov", "s.0002.pov"]:
        (folder / name).write_text("")
    pattern = ItemPattern([".pov"])
    listing = sort_listing([p.name for p in folder.iterdir()], pattern)
    assert listing.counts() == {"pending": 1, "running": 0, "done": 1, "failed": 0}
    assert [i.name() for i in listing.superseded] == ["s.0002.envy~failed~3~h1~aa.pov"]
    assert reset_items(folder, pattern, ["failed"], REAL_FS) == 0  # the re-export stands for frame 2
    assert (folder / "s.0002.pov").exists() and (folder / "s.0002.envy~failed~3~h1~aa.pov").exists()


# -- real agents, real POV-Ray --------------------------------------------------------------------
def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _listing(folder: Path):  # type: ignore[no-untyped-def]
    return sort_listing(_names(folder), ItemPattern([".pov"]))


def _job_json(farm: Farm, job: str) -> dict:
    code, out, err = cli(farm, "jobs", job, "--json")
    assert code == 0, err
    return json.loads(out)[0]


def test_povray_parse_error_explained_then_fixed_by_re_export_and_frames_requeued(
        farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("povray")
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(farm.root / "config"))
    frames = pov_frames(tmp_path / "shot020" / "frames", 4)
    (frames / "shot010.0003.pov").write_text(BROKEN)
    code, out, err = cli(farm, "submit", str(frames), "--name", "shot020", "--retries", "1")
    assert code == 0, err
    agents = [farm.start_agent(h) for h in ("lab1-01", "lab1-02")]
    for a in agents:
        farm.wait_heartbeat(a)
    farm.send("lab1 * render()")
    wait_for(lambda: _listing(frames).counts() == {"pending": 0, "running": 0, "done": 3, "failed": 1}, 120,
             "3 frames done and the broken one failed for good")

    # §1: the job is finished, with failures, and agents say there is nothing left.
    job = _job_json(farm, "shot020")
    assert job["state"] == "complete with failures" and (job["done"], job["failed"], job["total"]) == (3, 1, 4)
    reason = job["failures"]["shot010.0003.pov"]
    assert "Parse Error: No matching } in 'sphere'" in reason, reason

    def both_idle() -> bool:
        code, out, _ = cli(farm, "status")
        return code == 0 and out.count("idle (queue empty)") == 2
    wait_for(both_idle, 20, "both agents to say idle (queue empty)")

    # §2: the frame list and the frame's log, every attempt host by host.
    code, out, err = cli(farm, "jobs", "shot020", "--frames")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("shot010.0003.pov"))
    assert "failed" in row and "Parse Error: No matching } in 'sphere'" in row
    assert row.split()[3] == "2"  # two attempts (max-retries 1)
    done_row = next(line for line in out.splitlines() if line.startswith("shot010.0001.pov"))
    assert "done" in done_row and ("lab1-01" in done_row or "lab1-02" in done_row)
    code, out, err = cli(farm, "log", "shot020", "3")
    assert code == 0, err
    assert out.count("--- attempt ") == 2 and "--- attempt 1 on lab1-0" in out and "--- attempt 2 on lab1-0" in out
    assert out.count("Parse Error: No matching } in 'sphere'") >= 2
    assert cli(farm, "log", "shot020", "9")[0] == 2  # no such frame: one line, exit 2

    # §3: re-export the fixed scene under its own name: it replaces frame 3, counted once.
    (frames / "shot010.0003.pov").write_text(_fixed_scene(frames))
    job = _job_json(farm, "shot020")
    assert (job["total"], job["failed"]) == (4, 0) and job["done"] + job["pending"] + job["running"] == 4
    wait_for(lambda: _listing(frames).counts()["done"] == 4, 60, "the fixed frame to render")
    assert _job_json(farm, "shot020")["state"] == "complete"
    assert cli(farm, "reset", "shot020", "--failed")[1].strip().endswith("0 item(s) back to pending")
    assert [n for n in _names(frames) if "envy~replaced~" in n], "the broken copy is kept, out of the way"

    # reset --frames requeues exactly the frames named; log -f follows one until it is done.
    code, out, err = cli(farm, "reset", "shot020", "--frames", "2,4")
    assert code == 0 and "2 item(s) back to pending" in out, (out, err)
    follow = subprocess.run([sys.executable, "-m", "envy_io", "--share", str(farm.share), "log", "shot020", "4", "-f"],
                            env=farm.env, capture_output=True, text=True, timeout=90)
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.rstrip().endswith("shot010.0004.pov: done")
    wait_for(lambda: _listing(frames).counts() == {"pending": 0, "running": 0, "done": 4, "failed": 0}, 60,
             "frames 2 and 4 rendered again")
    final = _job_json(farm, "shot020")
    assert (final["state"], final["done"], final["total"]) == ("complete", 4, 4)

    # §1: archive hides the finished job (files kept); idle agents still take a new job; delete
    # removes the Envy files only and gives the scenes their own names back.
    assert cli(farm, "archive", "shot020")[0] == 0
    assert "shot020" not in cli(farm, "jobs")[1] and "shot020" in cli(farm, "jobs", "--all")[1]
    second = pov_frames(tmp_path / "shot030" / "frames", 2)
    assert cli(farm, "submit", str(second), "--name", "shot030")[0] == 0
    wait_for(lambda: _listing(second).counts()["done"] == 2, 60, "idle agents to render a new job")
    job_id = final["id"]
    code, out, err = cli(farm, "delete", "shot020")
    assert code == 0 and "deleted" in out, (out, err)
    assert not (farm.layout.jobs_dir / f"{job_id}.json").exists() and not (farm.layout.jobs_dir / job_id).exists()
    names = _names(frames)
    assert [f"shot010.{i:04d}.pov" for i in range(1, 5)] == [n for n in names if n.endswith(".pov") and "~" not in n]
    assert all(f"shot010.{i:04d}.png" in names for i in range(1, 5)), "the images are kept"
    assert cli(farm, "jobs", "shot020")[0] == 2
    for a in agents:
        assert "Traceback" not in farm.log(a.host)


def _fixed_scene(frames: Path) -> str:
    done = next(p for p in frames.iterdir() if p.name.startswith("shot010.0001.") and p.suffix == ".pov")
    return done.read_text()


def test_jobs_get_short_unique_names_and_a_resubmit_needs_again(farm: Farm, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(farm.root / "config"))
    folder = pov_frames(tmp_path / "shot020" / "frames", 2)
    code, out, err = cli(farm, "submit", str(folder))
    assert code == 0, err
    assert _job_json(farm, "shot020")["name"] == "shot020"
    code, out, err = cli(farm, "submit", str(folder))
    assert code == 2 and "already job shot020" in err and "--again" in err and len(err.strip().splitlines()) == 1
    assert len(json.loads(cli(farm, "jobs", "--json")[1])) == 1  # nothing written
    code, out, err = cli(farm, "submit", str(folder), "--again")
    assert code == 0, err
    assert _job_json(farm, "shot020-2")["name"] == "shot020-2"
    assert cli(farm, "pause", "shot020-2")[0] == 0 and _job_json(farm, "shot020-2")["state"] == "paused"
