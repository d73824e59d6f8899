"""Paths in jobs and tasks are confined to the job folder and the farm's project roots (Must-hold 6).

These check envy/render/confine.py on a real folder tree with real symlinks;
the worker's use of it is in tests/hostile/test_hostile_agents.py once wired.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envy.render.confine import MAX_TASK_FRAMES, Confinement, PathRefused, RangeRefused, check_frame_range
from envy.render.jobs import JobError
from envy.render.submit import parse_frames


@pytest.fixture
def tree(tmp_path: Path) -> Confinement:
    (tmp_path / "share" / "jobs" / "j1").mkdir(parents=True)
    (tmp_path / "projects" / "shot010").mkdir(parents=True)
    (tmp_path / "home" / "other" / "Documents").mkdir(parents=True)
    (tmp_path / "home" / "other" / ".bashrc").write_text("# theirs\n")
    return Confinement.for_job(tmp_path / "share" / "jobs" / "j1", [tmp_path / "projects"])


def test_paths_inside_the_job_folder_or_a_project_root_are_allowed(tree: Confinement) -> None:
    assert tree.check("tasks/task.0001.json", "task") == tree.job_dir / "tasks" / "task.0001.json"
    inside = tree.project_roots[0] / "shot010" / "shot.usd"
    assert tree.check(str(inside), "usd") == inside
    assert tree.check_output(str(tree.project_roots[0] / "shot010" / "out" / "f.0001.exr")).name == "f.0001.exr"


@pytest.mark.parametrize("value", ["../../secret", "tasks/../../x", "..\\..\\x", "a/\x00b"])
def test_climbing_out_is_refused(tree: Confinement, value: str) -> None:
    with pytest.raises(PathRefused):
        tree.check(value, "task path")


def test_another_users_documents_is_refused_with_the_allowed_roots_named(tree: Confinement, tmp_path: Path) -> None:
    with pytest.raises(PathRefused, match="outside the allowed folders") as caught:
        tree.check(str(tmp_path / "home" / "other" / "Documents"), "job source")
    assert str(tree.project_roots[0]) in str(caught.value)


def test_a_symlink_out_of_the_project_is_refused_component_by_component(tree: Confinement, tmp_path: Path) -> None:
    link = tree.project_roots[0] / "shot010" / "innocent"
    os.symlink(tmp_path / "home" / "other", link)
    with pytest.raises(PathRefused, match="is a symlink to"):
        tree.check(str(link / "Documents" / "a.png"), "output")
    with pytest.raises(PathRefused, match="is a symlink to"):
        tree.check_output(str(link / ".bashrc"))
    assert (tmp_path / "home" / "other" / ".bashrc").read_text() == "# theirs\n"


def test_a_symlink_that_stays_inside_the_roots_is_allowed(tree: Confinement) -> None:
    link = tree.job_dir / "scene"
    os.symlink(tree.project_roots[0] / "shot010", link)
    assert tree.check(str(link / "shot.usd"), "usd") == link / "shot.usd"


def test_an_output_never_replaces_a_link_or_a_folder(tree: Confinement, tmp_path: Path) -> None:
    out = tree.project_roots[0] / "shot010"
    os.symlink(tmp_path / "home" / "other" / ".bashrc", out / "f.0001.png")
    (out / "f.0002.png").mkdir()
    for name in ("f.0001.png", "f.0002.png"):
        with pytest.raises(PathRefused):
            tree.check_output(str(out / name))
    (out / "f.0003.png").write_bytes(b"an earlier render of this frame")
    assert tree.check_output(str(out / "f.0003.png")).name == "f.0003.png"


def test_range_tasks_and_submitted_ranges_are_capped() -> None:
    assert check_frame_range(1, 240) == (1, 240)
    for start, end in [(1, 200_000_000), (5, 1), ("1", 2), (True, 2)]:
        with pytest.raises(RangeRefused):
            check_frame_range(start, end)
    with pytest.raises(JobError, match="at most"):
        parse_frames(f"1-{MAX_TASK_FRAMES + 1}")


def test_inside_the_share_a_job_may_not_lead_into_envys_own_files(tmp_path: Path) -> None:
    share = tmp_path / "share"
    for folder in ("jobs/j1", "jobs/j2", "status", "users/ana", "proj/shot"):
        (share / folder).mkdir(parents=True)
    inside = Confinement.for_job(share / "jobs" / "j1", [], share_root=share)
    assert inside.check(str(share / "proj" / "shot" / "f.png"), "output").name == "f.png"
    assert inside.check_output(str(share / "jobs" / "j1" / "thumbs" / "f.png")).name == "f.png"
    for target in ("status/lab1-01.json", "instructions.txt", "jobs/j2/tasks/t.json", "users/ana/Envy_Functions.py",
                   "config.yaml"):
        with pytest.raises(PathRefused, match="Envy's own files"):
            inside.check_output(str(share / target))
    os.symlink(share / "users" / "ana", share / "proj" / "shot" / "out")
    with pytest.raises(PathRefused, match="symlink into Envy's own files"):
        inside.check(str(share / "proj" / "shot" / "out" / "Envy_Functions.py"), "output")


def test_another_oss_drive_or_unc_path_without_a_remap_rule_is_refused(tree: Confinement) -> None:
    if os.name == "nt":
        pytest.skip("drive letters are this OS's own paths")
    for value in ("C:/Users/other/Documents", "C:relative"):
        with pytest.raises(PathRefused, match="another OS's path"):
            tree.check(value, "output folder")
    with pytest.raises(PathRefused, match="outside the allowed folders"):
        tree.check("//server/share/x", "output folder")
