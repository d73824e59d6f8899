"""When a job's finish is looked for (envy/render/job_finish.py): once per job end, not once per frame.

A real folder of frame files on a temp share, real claimers (FolderQueue) and a
real outbox (not started: the event marker on the share is what is checked).
The share is wrapped only to count listings, the share request whose cost
grows with the folder (ENGINEERING §1.13).
"""

from __future__ import annotations

from pathlib import Path

from envy.notify.events import marker_path
from envy.notify.outbox import Outbox
from envy.notify.settings import NotifySettings
from envy.render.claims import FolderQueue, Identity, ItemPattern
from envy.render.job_finish import JobFinish
from envy.render.jobs import Job
from envy.share.fs import REAL_FS, PathLike, ShareFS
from envy.share.layout import ShareLayout


class ListingsCountedFS(ShareFS):
    def __init__(self) -> None:
        self.listings = 0

    def listdir(self, path: PathLike) -> list[str]:
        self.listings += 1
        return super().listdir(path)


def _setup(tmp_path: Path, frames: int) -> tuple[Job, Path, ShareLayout]:
    layout = ShareLayout(tmp_path / "share")
    layout.jobs_dir.mkdir(parents=True)
    folder = tmp_path / "share" / "shot"
    folder.mkdir()
    for i in range(1, frames + 1):
        (folder / f"shot.{i:04d}.frame").write_text("scene")
    job = Job(id="20260101-000000-shot-0001", name="shot", kind="frames", renderer="standin", source=str(folder),
              extensions=[".frame"])
    return job, folder, layout


def _finish(layout: ShareLayout, fs: ListingsCountedFS, me: Identity, folder: Path, tmp_path: Path) -> JobFinish:
    outbox = Outbox(lambda user: NotifySettings(), "envy@test", pending_dir=tmp_path / f"state-{me.host}")
    return JobFinish(layout, fs, me, lambda job: folder, outbox)


def test_frames_finished_while_names_are_left_to_claim_list_nothing_and_the_last_one_tells_the_finish(
        tmp_path: Path) -> None:
    job, folder, layout = _setup(tmp_path, 20)
    fs = ListingsCountedFS()
    me = Identity("lab4-01", 100, "aaaa0001")
    queue = FolderQueue(folder, ItemPattern([".frame"]), me, fs)
    finish = _finish(layout, fs, me, folder, tmp_path)
    for _ in range(20):
        claim = queue.claim_next()
        assert claim is not None
        assert queue.complete(claim)
        finish.item_finished(job, more_to_claim=queue.untried() > 0)
        if queue.untried():
            assert not marker_path(layout, job.id).exists()
    # One listing to claim from, one to see the job finished: not one per frame.
    assert fs.listings == 2
    assert marker_path(layout, job.id).exists()


def test_a_job_finished_by_others_is_told_when_a_claim_finds_nothing_left(tmp_path: Path) -> None:
    """This agent's listing still names frames others took and completed: its claim finds none, then it looks."""
    job, folder, layout = _setup(tmp_path, 3)
    fs = ListingsCountedFS()
    me, other = Identity("lab4-01", 100, "aaaa0001"), Identity("lab4-02", 200, "bbbb0002")
    mine = FolderQueue(folder, ItemPattern([".frame"]), me, fs)
    theirs = FolderQueue(folder, ItemPattern([".frame"]), other, REAL_FS)
    finish = _finish(layout, fs, me, folder, tmp_path)
    claim = mine.claim_next()
    assert claim is not None
    while (taken := theirs.claim_next()) is not None:
        assert theirs.complete(taken)
    assert mine.complete(claim)
    assert mine.untried() > 0  # stale: those names are the other agent's by now
    finish.item_finished(job, more_to_claim=True)
    assert not marker_path(layout, job.id).exists()
    assert mine.claim_next() is None  # lists again, finds nothing pending
    finish.nothing_to_claim(job)
    assert marker_path(layout, job.id).exists()


def test_a_job_due_a_look_is_looked_at_by_an_idle_workers_recheck(tmp_path: Path) -> None:
    job, folder, layout = _setup(tmp_path, 1)
    fs = ListingsCountedFS()
    me = Identity("lab4-01", 100, "aaaa0001")
    queue = FolderQueue(folder, ItemPattern([".frame"]), me, fs)
    finish = _finish(layout, fs, me, folder, tmp_path)
    claim = queue.claim_next()
    assert claim is not None and queue.complete(claim)
    finish.item_finished(job, more_to_claim=True)  # say the job left this agent's targets meanwhile
    finish.recheck()
    assert marker_path(layout, job.id).exists()
