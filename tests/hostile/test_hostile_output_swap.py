"""The output folder swapped for a symlink between the plan and the move into place (Must-hold 6).

A classmate who can write the share replaces a job's output folder (or a
parent) with a symlink to another user's folder while the frame renders, or
puts a file at a frame's final name. The move of the rendered image into place
must not land outside the share and the project roots and must never replace a
file Envy did not create for that frame.

The first test is a real agent rendering a real POV-Ray frame; POV-Ray is
started by a hook (a shell script) that waits until the test has swapped the
folder, so the swap is mid-render at a known moment. The others drive the move
itself (envy/render/publish.py) on real folders, with the swap made through the
filesystem seam at the instants a real-agent test cannot choose: after the
check, and after the folder was opened.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import require_tool
from envy.platform.pinned_folder import PinnedFolder, dir_fds_supported
from envy.render.claims import ItemPattern, reset_items, sort_listing
from envy.render.confine import Confinement, PathRefused
from envy.render.publish import publish_output
from envy.share.fs import REAL_FS, PathLike, ShareFS
from farm import Farm, wait_for
from render_helpers import is_png, pov_frames, submit_folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"") for p in sorted(folder.rglob("*"))}


def swap_for_link(folder: Path, target: Path) -> Path:
    """What the classmate does: the folder moved aside, a symlink to ``target`` in its place."""
    aside = folder.with_name(folder.name + ".moved")
    os.rename(folder, aside)
    os.symlink(target, folder)
    return aside


def hooked_povray_profile(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A profile running real POV-Ray through a hook that says it started and waits for ``go``."""
    povray = require_tool("povray")
    started, go = tmp_path / "hook-started", tmp_path / "hook-go"
    hook = tmp_path / "povray-hook.sh"
    hook.write_text(f'#!/bin/sh\n: > "{started}"\nwhile [ ! -e "{go}" ]; do sleep 0.05; done\nexec {povray} "$@"\n')
    hook.chmod(0o755)
    profile = tmp_path / "povray-hooked.yaml"
    profile.write_text(
        "name: povray-hooked\nextensions: [.pov]\n"
        f"executables: {{linux: ['{hook}']}}\n"
        "argv: ['+I\"{scene}\"', +W160, +H120, -A, -D, +V, +FN, +WT1]\n"
        "output_arg: ['+O\"{output}\"']\noutput_ext: .png\n"
        "errors: ['^Parse Error', 'Fatal error']\n"
    )
    return profile, started, go


def test_a_real_povray_frame_whose_output_folder_becomes_a_link_out_mid_render_is_refused(tmp_path: Path) -> None:
    profile, started, go = hooked_povray_profile(tmp_path)
    victim = tmp_path / "home" / "other" / "renders"
    victim.mkdir(parents=True)
    (victim / "shot010.0001.png").write_bytes(b"their own image")
    before = snapshot(victim)
    farm = Farm(tmp_path / "farm")
    try:
        shot = pov_frames(farm.root / "projects" / "shot010" / "frames", 1)
        out = farm.root / "projects" / "shot010" / "out"
        job = submit_folder(farm.share, shot, renderer="povray-hooked", profiles=[profile], output=str(out))
        agent = farm.start_agent("lab1-01", profiles=[str(profile)], max_retries=0)
        farm.wait_heartbeat(agent)
        farm.send("* render()")
        wait_for(started.exists, 60, "POV-Ray's hook to start (the frame planned, its output folder made)")
        swap_for_link(out, victim)
        go.touch()

        def failed() -> list:
            return sort_listing(os.listdir(shot), ItemPattern([".pov"])).failed
        wait_for(failed, 90, "the frame to be failed")
        reasons = "".join(p.read_text(errors="replace") for p in job.logs_dir(farm.layout).glob("*.log"))
        assert f"{out} is a symlink to {victim}" in reasons, reasons[-2000:]
        assert f"{out} is a symlink to {victim}" in farm.log("lab1-01")
        # POV-Ray wrote its temp image through the link (a renderer opens its path itself); Envy
        # removed it, and the image of the same name there was never replaced.
        assert snapshot(victim) == before, "a file was left or replaced in the other user's folder"
        assert not (farm.layout.jobs_dir / job.id / "outputs").exists(), "a refused frame recorded an output"
        farm.marker("lab1-01")
        assert agent.alive()
    finally:
        farm.stop_all()


# -- the move itself, with the swap at the instants a real agent cannot choose -----------------

class Folders:
    def __init__(self, tmp_path: Path) -> None:
        self.share = tmp_path / "share"
        self.out = self.share / "proj" / "out"
        self.out.mkdir(parents=True)
        self.victim = tmp_path / "home" / "other"
        self.victim.mkdir(parents=True)
        (self.victim / "f.0001.png").write_bytes(b"theirs")
        self.confinement = Confinement.for_job(self.share / "jobs" / "j1", (), self.share)
        self.temp = self.out / "f.0001.envy~tmp~n0nce.png"
        self.temp.write_bytes(b"rendered")
        self.final = self.out / "f.0001.png"


class SwapsBeforeOpen(ShareFS):
    """The folder becomes a link after the checks, just before it is opened."""

    def __init__(self, folders: Folders) -> None:
        self.folders = folders

    def open_folder(self, root: PathLike, parts: tuple[str, ...]) -> PinnedFolder:
        swap_for_link(self.folders.out, self.folders.victim)
        return super().open_folder(root, parts)


class SwapsAfterOpen(SwapsBeforeOpen):
    """The folder becomes a link once it is open, just before the move."""

    def open_folder(self, root: PathLike, parts: tuple[str, ...]) -> PinnedFolder:
        folder = ShareFS.open_folder(self, root, parts)
        swap_for_link(self.folders.out, self.folders.victim)
        return folder


def test_a_link_swapped_in_after_the_check_fails_the_open_and_nothing_is_moved(tmp_path: Path) -> None:
    f = Folders(tmp_path)
    before = snapshot(f.victim)
    with pytest.raises(PathRefused, match="changed while Envy checked it"):
        publish_output(f.temp, f.final, f.confinement, [], SwapsBeforeOpen(f))
    assert snapshot(f.victim) == before
    assert (f.out.with_name("out.moved") / f.temp.name).read_bytes() == b"rendered"


@pytest.mark.skipif(not dir_fds_supported(), reason="no directory descriptors here (Windows): the window stays")
def test_a_link_swapped_in_after_the_open_does_not_lead_the_move_out(tmp_path: Path) -> None:
    f = Folders(tmp_path)
    before = snapshot(f.victim)
    publish_output(f.temp, f.final, f.confinement, [], SwapsAfterOpen(f))
    assert snapshot(f.victim) == before, "the move followed the link swapped in after the folder was opened"
    assert (f.out.with_name("out.moved") / "f.0001.png").read_bytes() == b"rendered"


def test_a_parent_swapped_for_a_link_out_before_the_move_is_refused(tmp_path: Path) -> None:
    f = Folders(tmp_path)
    (f.victim / "out").mkdir()
    swap_for_link(f.out.parent, f.victim)
    with pytest.raises(PathRefused, match="is a symlink to"):
        publish_output(f.temp, f.final, f.confinement, [], REAL_FS)
    assert not (f.victim / "out" / "f.0001.png").exists()


def test_an_existing_final_image_is_replaced_only_when_this_frames_record_lists_it(tmp_path: Path) -> None:
    f = Folders(tmp_path)
    f.final.write_bytes(b"a classmate's file")
    with pytest.raises(PathRefused, match="already exists and Envy did not render it for this frame"):
        publish_output(f.temp, f.final, f.confinement, [], REAL_FS)
    assert f.final.read_bytes() == b"a classmate's file"
    # A re-render of the frame (reset): the record of its earlier render says Envy wrote it.
    publish_output(f.temp, f.final, f.confinement, [f.final], REAL_FS)
    assert f.final.read_bytes() == b"rendered" and not f.temp.exists()


def test_a_worker_replaces_the_image_of_its_own_earlier_render_of_the_frame(tmp_path: Path) -> None:
    """The record the worker reads is the one an earlier completion wrote (envy/render/output_record.py)."""
    require_tool("povray")
    farm = Farm(tmp_path / "farm")
    try:
        shot = pov_frames(farm.root / "shot", 1)
        out = farm.root / "out"
        job = submit_folder(farm.share, shot, renderer="povray", output=str(out))
        agent = farm.start_agent("lab1-01")
        farm.wait_heartbeat(agent)
        farm.send("* render()")
        record = farm.layout.jobs_dir / job.id / "outputs" / "shot010.0001.json"
        wait_for(record.exists, 90, "the frame to complete and be recorded")
        image = out / "shot010.0001.png"
        first = image.stat().st_mtime_ns
        assert json.loads(record.read_text())["files"]
        # Done -> pending again, as `envy-io reset --all` does: the agent renders it again.
        assert reset_items(shot, ItemPattern([".pov"]), ["done"], REAL_FS) == 1
        wait_for(lambda: image.stat().st_mtime_ns != first, 90, "the re-render to replace the image")
        assert is_png(image)
        assert "already exists" not in farm.log("lab1-01")
    finally:
        farm.stop_all()
