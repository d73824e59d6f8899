"""The job actions the CLI and the web monitor share (envy_io/job_actions.py), through the CLI."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from envy.render.claims import ItemPattern, sort_listing
from envy.render.jobs import load_job
from envy.share.fs import REAL_FS
from envy_io.cli import main
from envy_io.errors import UsageError
from envy_io.job_actions import parse_frames, parse_priority
from farm import Farm
from render_helpers import pov_frames, submit_folder


def cli(farm: Farm, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--share", str(farm.share), *args])
    return code, out.getvalue(), err.getvalue()


def test_frame_lists() -> None:
    assert parse_frames("7,10-12") == {7, 10, 11, 12}
    assert parse_frames(" 3 , 5 - 6 ") == {3, 5, 6}
    for bad in ("", "a", "5-3", "1-9999999", "1,,2", "7;rm", "1" * 300):
        with pytest.raises(UsageError, match="expected frame numbers and ranges like 7,10-12"):
            parse_frames(bad)
    assert parse_priority("70") == 70 and parse_priority(0) == 0
    for bad in ("101", -1, True, 5.5, None, "x"):
        with pytest.raises(UsageError, match="whole number from 0 to 100"):
            parse_priority(bad)


def test_reset_frames_archive_and_the_jobs_table(farm: Farm, tmp_path: Path) -> None:
    frames = pov_frames(tmp_path / "shot" / "frames", 5)
    job = submit_folder(farm.share, frames, name="shot")
    names = sorted(p.name for p in frames.iterdir() if p.suffix == ".pov")
    for name in names[:4]:
        (frames / name).rename(frames / name.replace(".pov", ".envy~done~lab1-01~9f2c01ab.pov"))
    (frames / names[4]).rename(frames / names[4].replace(".pov", ".envy~failed~3~lab1-02~9f2c01ab.pov"))
    code, out, _ = cli(farm, "jobs")
    assert code == 0 and "complete with failures" in out and "[################!!!!]" in out
    data = json.loads(cli(farm, "jobs", "--json")[1])[0]
    assert (data["state"], data["job_state"], data["done"], data["failed"], data["eta_s"]) == (
        "complete with failures",
        "active",
        4,
        1,
        0.0,
    )
    code, out, _ = cli(farm, "reset", "shot", "--frames", "2,4-5")
    assert code == 0 and out.strip() == f"{job.id}: 3 item(s) back to pending"
    listing = sort_listing([p.name for p in frames.iterdir()], ItemPattern([".pov"]))
    assert sorted(i.base for i in listing.pending) == ["shot010.0002", "shot010.0004", "shot010.0005"]
    assert sorted(i.base for i in listing.done) == ["shot010.0001", "shot010.0003"]
    code, _, err = cli(farm, "reset", "shot", "--frames", "2-1")
    assert code == 2 and "backwards" in err and err.count("\n") == 1
    assert cli(farm, "archive", "shot")[0] == 0 and load_job(farm.layout, job.id, REAL_FS).archived
    assert json.loads(cli(farm, "jobs", "--json")[1]) == []
    assert [j["name"] for j in json.loads(cli(farm, "jobs", "--json", "--all")[1])] == ["shot"]
    assert cli(farm, "archive", "shot", "--undo")[0] == 0 and not load_job(farm.layout, job.id, REAL_FS).archived
