"""A rendering agent's look at jobs/: unchanged job files are not read again (issue 14, scale)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from envy.render.job_files import FULL_READ_EVERY_S, JobFiles
from envy.render.jobs import Job, new_job_id, save_job
from envy.share.fs import REAL_FS, PathLike, ShareFS
from envy.share.layout import ShareLayout, init_share


class CountingFS(ShareFS):
    def __init__(self) -> None:
        self.reads: list[str] = []

    def read_bounded(self, path: PathLike, limit: int) -> bytes:
        self.reads.append(Path(path).name)
        return super().read_bounded(path, limit)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _job(layout: ShareLayout, name: str) -> Job:
    job = Job(id=new_job_id(name), name=name, kind="frames", source=str(layout.root / name), renderer="povray",
              extensions=[".pov"])
    save_job(layout, job, REAL_FS)
    return job


def test_unchanged_job_files_are_read_once_and_a_changed_one_again(tmp_path: Path) -> None:
    layout = ShareLayout(tmp_path / "share")
    init_share(layout.root, "student", fs=REAL_FS)
    first, second = _job(layout, "first"), _job(layout, "second")
    fs, clock = CountingFS(), Clock()
    files = JobFiles(layout, fs, clock)
    jobs, warnings = files.read()
    assert {j.name for j in jobs} == {"first", "second"} and not warnings
    assert len(fs.reads) == 2
    clock.now += 2
    assert {j.name for j in files.read()[0]} == {"first", "second"}
    assert len(fs.reads) == 2, "read unchanged job files again"

    save_job(layout, dataclasses.replace(second, state="paused", priority=90), REAL_FS)
    clock.now += 2
    jobs, _ = files.read()
    assert fs.reads[2:] == [f"{second.id}.json"]
    assert {j.name: j.state for j in jobs} == {"first": "active", "second": "paused"}

    (layout.jobs_dir / f"{first.id}.json").unlink()
    clock.now += 2
    assert [j.name for j in files.read()[0]] == ["second"]


def test_every_job_file_is_read_again_now_and_then_and_at_a_fresh_look(tmp_path: Path) -> None:
    """A 2 s-timestamp server can keep a file's size and time through a pause and a resume."""
    layout = ShareLayout(tmp_path / "share")
    init_share(layout.root, "student", fs=REAL_FS)
    _job(layout, "first")
    fs, clock = CountingFS(), Clock()
    files = JobFiles(layout, fs, clock)
    files.read()
    clock.now += FULL_READ_EVERY_S
    files.read()
    assert len(fs.reads) == 2
    files.read(fresh=True)
    assert len(fs.reads) == 3


def test_a_corrupt_job_file_is_a_warning_and_the_others_are_read(tmp_path: Path) -> None:
    layout = ShareLayout(tmp_path / "share")
    init_share(layout.root, "student", fs=REAL_FS)
    _job(layout, "good")
    (layout.jobs_dir / "broken.json").write_text("{not json")
    jobs, warnings = JobFiles(layout, ShareFS()).read()
    assert [j.name for j in jobs] == ["good"] and len(warnings) == 1 and "broken.json" in warnings[0]
