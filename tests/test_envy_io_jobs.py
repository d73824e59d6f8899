"""Envy IO's job commands: submit, jobs, pause/resume/cancel, priority, reset, monitor."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from envy.render.claims import ItemPattern, sort_listing
from envy_io.cli import main
from farm import Farm, wait_for
from render_helpers import standin_profile

WRITE_PNG = (
    "import sys, time, pathlib, base64; time.sleep(0.2); "
    "pathlib.Path(sys.argv[2]).write_bytes(base64.b64decode("
    "'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC')); print('100%')"
)


def cli(farm: Farm, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--share", str(farm.share), *args])
    return code, out.getvalue(), err.getvalue()


def frames(folder: Path, prefix: str, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, count + 1):
        (folder / f"{prefix}.{i:04d}.frame").write_text("{}")
    return folder


@pytest.fixture
def profile(farm: Farm, tmp_path: Path) -> Path:
    path = standin_profile(tmp_path / "standin.yaml", "standin", WRITE_PNG)
    (farm.root / "config").mkdir(exist_ok=True)
    (farm.root / "config" / "config.yaml").write_text(f"profiles: ['{path}']\n")
    return path


def test_submit_and_jobs_counts_and_bad_input_writes_nothing(
    farm: Farm, tmp_path: Path, profile: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(farm.root / "config"))
    folder = frames(tmp_path / "shot", "shot", 5)
    code, out, _ = cli(farm, "submit", str(folder), "--priority", "70")
    assert code == 0 and "submitted" in out and "5 frames" in out
    before = sorted(p.name for p in farm.layout.jobs_dir.iterdir())
    for bad in (["submit", str(tmp_path / "missing")], ["submit", str(folder), "--priority", "101"],
                ["submit", str(folder), "--renderer", "nosuch"], ["submit", str(folder), "--frames", "1-5"],
                ["submit", str(folder), "--remap", "nocomma"]):
        code, _, err = cli(farm, *bad)
        assert code == 2 and err.count("\n") == 1, (bad, err)
    assert sorted(p.name for p in farm.layout.jobs_dir.iterdir()) == before
    code, out, _ = cli(farm, "jobs", "--json")
    (job,) = json.loads(out)
    assert (job["priority"], job["pending"], job["done"], job["renderer"]) == (70, 5, 0, "standin")


def test_pause_resume_priority_reset_and_monitor_with_a_real_agent(
    farm: Farm, tmp_path: Path, profile: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(farm.root / "config"))
    low = frames(tmp_path / "low", "low", 3)
    high = frames(tmp_path / "high", "high", 3)
    out_dir = tmp_path / "out"
    assert cli(farm, "submit", str(low), "--priority", "10", "--output", str(out_dir), "--name", "low")[0] == 0
    assert (
        cli(farm, "submit", str(high), "--priority", "10", "--output", str(out_dir), "--name", "high", "--paused")[0]
        == 0
    )
    assert cli(farm, "priority", "high", "90")[0] == 0
    assert cli(farm, "pause", "low")[0] == 0
    agent = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.wait_heartbeat(agent)
    farm.send("* render()")
    # The marker: a one-frame job at the lowest priority. The one worker renders in
    # priority order, so by the time its frame is done a paused frame that was
    # (wrongly) eligible would have been rendered first.
    marker = frames(tmp_path / "marker", "marker", 1)
    assert (
        cli(
            farm, "submit", str(marker), "--priority", "0", "--output", str(tmp_path / "marker-out"), "--name", "marker"
        )[0]
        == 0
    )
    pattern = ItemPattern([".frame"])
    done = lambda folder: len(sort_listing([p.name for p in folder.iterdir()], pattern).done)  # noqa: E731
    wait_for(lambda: done(marker) == 1, 30, "the marker job's frame to be done")
    assert not list(out_dir.glob("*.png")) if out_dir.exists() else True
    assert "completed low" not in farm.log("lab1-01") and "completed high" not in farm.log("lab1-01")
    assert cli(farm, "cancel", "marker")[0] == 0
    assert cli(farm, "resume", "low")[0] == 0
    assert cli(farm, "resume", "high")[0] == 0
    wait_for(lambda: done(low) == 3 and done(high) == 3, 60, "both jobs done")
    order = re.findall(r"completed (low|high)\.\d+", farm.log("lab1-01"))
    # Only frames taken after both were resumed count: high (priority 90) goes before low (10).
    first_high = order.index("high")
    assert "low" not in order[first_high:first_high + 3]
    code, out, _ = cli(farm, "monitor", "--once")
    assert code == 0 and "high" in out and "3/3" in out and "lab1-01" in out
    renders_before = farm.log("lab1-01").count("completed high")
    assert cli(farm, "reset", "high", "--all")[0] == 0
    assert done(high) == 0
    wait_for(lambda: done(high) == 3 and farm.log("lab1-01").count("completed high") == renders_before + 3, 30,
             "the reset frames to render again")
    assert cli(farm, "cancel", "high")[0] == 0
    code, out, _ = cli(farm, "jobs", "--json")
    assert [j["name"] for j in json.loads(out)] == ["low"]


def test_unknown_job_is_one_line_exit_2(farm: Farm) -> None:
    code, _, err = cli(farm, "pause", "nosuchjob")
    assert code == 2 and "no job matches" in err and err.count("\n") == 1


def test_render_of_an_unknown_job_is_refused_with_the_known_names(
    farm: Farm, tmp_path: Path, profile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(farm.root / "config"))
    folder = frames(tmp_path / "shot020" / "frames", "shot020", 2)
    assert cli(farm, "submit", str(folder))[0] == 0

    code, out, err = cli(farm, "send", "* render('shot02')")

    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "no job is named 'shot02': did you mean shot020? known jobs are shot020" in err
    assert cli(farm, "send", "* render('shot020')")[0] == 0
    assert cli(farm, "send", "--force", "* render('shot02')")[0] == 0  # sent as typed
