"""Output folders are made below what exists, never as a tree under an unmounted drive (envy/share/output_folders.py).

An unmounted drive is an empty mount point here: a folder with nothing in it
(for the share: no sentinel). The real unmount under running agents is in
test_faults_share.py; the share vanishing between a claim and its plan is in
test_faults_planning.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envy.share.fs import REAL_FS, ShareFS
from envy.share.layout import init_share
from envy.share.output_folders import ShareAway, make_output_folder


class RecordingFS(ShareFS):
    def __init__(self) -> None:
        self.made: list[str] = []

    def mkdir(self, path: object) -> None:  # type: ignore[override]
        self.made.append(os.fspath(path))  # type: ignore[arg-type]
        super().mkdir(path)  # type: ignore[arg-type]

    def makedirs(self, path: object) -> None:  # type: ignore[override]
        raise AssertionError("a whole tree was asked for at once")


def test_a_missing_output_folder_is_made_level_by_level_below_the_project(tmp_path: Path) -> None:
    share = tmp_path / "share"
    init_share(share, "student", fs=REAL_FS)
    (share / "proj" / "shot").mkdir(parents=True)
    fs = RecordingFS()
    make_output_folder(share / "proj" / "out" / "beauty", [share], share, fs)
    assert (share / "proj" / "out" / "beauty").is_dir()
    assert fs.made == [str(share / "proj" / "out"), str(share / "proj" / "out" / "beauty")]
    make_output_folder(share / "proj" / "out" / "beauty", [share], share, fs)  # there already: nothing to do
    assert len(fs.made) == 2


def test_a_folder_at_the_top_of_a_mounted_share_is_made(tmp_path: Path) -> None:
    share = tmp_path / "share"
    init_share(share, "student", fs=REAL_FS)
    make_output_folder(share / "renders", [share], share, REAL_FS)
    assert (share / "renders").is_dir()


def test_an_unmounted_share_gets_no_tree(tmp_path: Path) -> None:
    mount_point = tmp_path / "Z"  # the share is not mounted: an empty folder
    mount_point.mkdir()
    with pytest.raises(ShareAway, match="is not there"):
        make_output_folder(mount_point / "proj" / "out", [mount_point], mount_point, REAL_FS)
    assert os.listdir(mount_point) == []


def test_a_missing_mount_point_gets_no_tree(tmp_path: Path) -> None:
    share = tmp_path / "gone"
    with pytest.raises(ShareAway):
        make_output_folder(share / "proj" / "out", [share], share, REAL_FS)
    assert not share.exists()


def test_an_empty_project_root_gets_no_tree_and_a_full_one_does(tmp_path: Path) -> None:
    share = tmp_path / "share"
    init_share(share, "student", fs=REAL_FS)
    projects = tmp_path / "P"
    projects.mkdir()
    with pytest.raises(ShareAway, match="is the project drive mounted"):
        make_output_folder(projects / "film" / "out", [share, projects], share, REAL_FS)
    assert os.listdir(projects) == []
    (projects / "film").mkdir()
    make_output_folder(projects / "film" / "out", [share, projects], share, REAL_FS)
    assert (projects / "film" / "out").is_dir()


def test_a_parent_that_vanishes_half_way_is_not_made_again(tmp_path: Path) -> None:
    share = tmp_path / "share"
    init_share(share, "student", fs=REAL_FS)
    (share / "proj").mkdir()

    class UnmountAfterFirstLevel(ShareFS):
        def mkdir(self, path: object) -> None:  # type: ignore[override]
            super().mkdir(path)  # type: ignore[arg-type]
            os.rmdir(path)  # type: ignore[arg-type]  # the drive went away: what was just made is gone

    with pytest.raises(FileNotFoundError):
        make_output_folder(share / "proj" / "out" / "beauty", [share], share, UnmountAfterFirstLevel())
    assert not (share / "proj" / "out").exists()
