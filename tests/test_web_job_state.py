"""Job states (issue 11 §1) decided from the job file and the item names, as CLI and web show them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from envy.render.job_state import (
    ACTIVE,
    CANCELLED,
    COMPLETE,
    COMPLETE_WITH_FAILURES,
    PAUSED,
    job_state,
    progress,
    summary_state,
)
from envy.render.jobs import Job
from envy.render.overview import JobSummary, summarize
from envy.render.remap import PathRemap
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout

JOB = Job(
    id="20261201-090000-shot-ab12",
    name="shot",
    kind="frames",
    renderer="povray",
    source="/x",
    extensions=[".pov"],
    created_at="2026-12-01T09:00:00Z",
    created_by="ana",
)
T0 = 1_796_115_600.0  # 2026-12-01T09:00:00Z


@pytest.mark.parametrize(
    "file_state, counts, listed, expected",
    [
        ("active", (3, 1, 2, 0), True, ACTIVE),
        ("active", (0, 1, 5, 0), True, ACTIVE),
        ("active", (0, 0, 6, 0), True, COMPLETE),
        ("active", (0, 0, 5, 1), True, COMPLETE_WITH_FAILURES),
        ("active", (0, 0, 0, 0), True, ACTIVE),  # nothing listed yet is not "complete"
        ("active", (0, 0, 6, 0), False, ACTIVE),  # an unreadable folder never finishes a job
        ("paused", (0, 0, 6, 0), True, PAUSED),
        ("cancelled", (4, 0, 2, 0), True, CANCELLED),
    ],
)
def test_state_from_job_file_and_counts(
    file_state: str, counts: tuple[int, int, int, int], listed: bool, expected: str
) -> None:
    assert job_state(dataclasses.replace(JOB, state=file_state), *counts, listed=listed) == expected


def test_state_from_the_item_names_on_a_real_folder(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    names = [
        "shot.0001.envy~done~lab1-01~9f2c01ab.pov",
        "shot.0002.envy~failed~3~lab1-02~9f2c01ab.pov",
        "shot.0003.envy~work~0~lab1-01~42~9f2c01ab.pov",
        ".DS_Store",
        "shot.0003.png",
    ]
    for n in names:
        (folder / n).write_text("")
    job = dataclasses.replace(JOB, source=str(folder))
    layout = ShareLayout(tmp_path / "share")
    s = summarize(layout, job, PathRemap.parse([]), REAL_FS, reasons=False)
    assert (s.done, s.failed, s.running, s.pending) == (1, 1, 1, 0) and summary_state(s) == ACTIVE
    (folder / names[2]).rename(folder / "shot.0003.envy~done~lab1-01~9f2c01ab.pov")
    s = summarize(layout, job, PathRemap.parse([]), REAL_FS, reasons=False)
    assert summary_state(s) == COMPLETE_WITH_FAILURES


def test_elapsed_and_eta() -> None:
    running = JobSummary(JOB, pending=6, running=2, done=2)
    p = progress(running, now=T0 + 100)
    assert p.state == ACTIVE and p.elapsed_s == 100 and p.eta_s == pytest.approx(400)  # 8 left at 50 s each
    assert progress(running, now=T0 + 100, rate=0.5).eta_s == pytest.approx(16)  # the viewer's own rate wins
    assert progress(JobSummary(JOB, pending=4), now=T0 + 10).eta_s is None  # no pace yet
    done = JobSummary(JOB, done=10)
    p = progress(done, now=T0 + 500, finished_at=T0 + 300)
    assert p.state == COMPLETE and p.elapsed_s == 300 and p.eta_s == 0 and p.percent == 100
    assert progress(JobSummary(dataclasses.replace(JOB, created_at="garbage"), done=1, pending=1)).elapsed_s is None


def test_progress_bar_and_json() -> None:
    p = progress(JobSummary(JOB, pending=5, done=4, failed=1), now=T0 + 60)
    assert p.bar(10) == "[####!-----]"
    data = p.to_json()
    assert data["state"] == ACTIVE and data["total"] == 10 and data["percent"] == 40.0
