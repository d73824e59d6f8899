"""StrictModes: files other users can write are refused; task paths never leave the job's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import envy.security
from envy.config import Config
from envy.protocol.instructions import stamp
from envy.render.claims import Claim, ItemName
from envy.render.jobs import Job
from envy.render.plans import PlanError, PlanInput, check_task_path
from envy.security import strict_mode_problem
from envy.share.fs import REAL_FS
from farm import Farm, wait_for

posix_only = pytest.mark.skipif(os.name != "posix", reason="mode bits are POSIX; Windows uses ACLs")


def foreign_group(path: Path) -> int | None:
    """A group ``path`` can be given that is not its owner's private group (None if we have none)."""
    import grp
    import pwd

    owner = pwd.getpwuid(path.stat().st_uid)
    candidates = [g.gr_gid for g in grp.getgrall()] if os.geteuid() == 0 else os.getgroups()
    for gid in candidates:
        try:
            group = grp.getgrgid(gid)
        except KeyError:
            continue
        if group.gr_name != owner.pw_name:
            return gid
    return None


def make_group_writable(path: Path) -> None:
    gid = foreign_group(path)
    if gid is None:
        pytest.skip("this user belongs to no group but its private one: cannot make a file writable by others")
    os.chown(path, -1, gid)
    path.chmod(0o664)


@posix_only
def test_only_files_nobody_else_can_write_pass(tmp_path: Path) -> None:
    path = tmp_path / "instructions.txt"
    path.write_text("")
    path.chmod(0o644)
    assert strict_mode_problem(path, "instruction file", fs=REAL_FS) is None
    path.chmod(0o646)
    problem = strict_mode_problem(path, "instruction file", fs=REAL_FS)
    assert problem is not None and "\n" not in problem
    assert problem.startswith(
        f"refusing instruction file {path}: every user can write it (mode 0646); fix with: chmod go-w"
    )
    make_group_writable(path)
    problem = strict_mode_problem(path, "user module", fs=REAL_FS)
    assert problem is not None and "can write it (mode 0664)" in problem and "group '" in problem


@posix_only
def test_a_group_writable_file_of_the_owners_private_group_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ubuntu's umask 002 makes new files group-writable, but nobody else is in a user-private group.
    path = tmp_path / "Envy_Functions.py"
    path.write_text("")
    path.chmod(0o664)
    monkeypatch.setattr(envy.security, "_is_private_group", lambda gid, uid: True)
    assert strict_mode_problem(path, "user module", fs=REAL_FS) is None
    path.chmod(0o666)
    assert strict_mode_problem(path, "user module", fs=REAL_FS) is not None  # "every user" is never private


# -- task paths --------------------------------------------------------------------------------
def plan_input(tmp_path: Path) -> PlanInput:
    job_dir = tmp_path / "share" / "jobs" / "20261120-140000-shot-ab12"
    (job_dir / "tasks").mkdir(parents=True)
    job = Job(
        id=job_dir.name, name="shot", kind="tasks", renderer="husk", source="Z:/proj/shot.usd", extensions=[".json"]
    )
    claim = Claim(job_dir / "tasks", ItemName("task.0001", ".json", "work", 0, "lab1-01", 1, "abcd0123"))
    return PlanInput(job, claim, {}, Config(), "abcd0123", job_dir, REAL_FS)


@pytest.mark.parametrize(
    "value",
    ["../other-job/tasks/x.json", "tasks/../../x", "..\\x", "tasks\\..\\..\\x", "/etc/passwd", "..", "tasks/.."],
)
def test_task_paths_that_leave_the_job_folder_are_rejected(tmp_path: Path, value: str) -> None:
    with pytest.raises(PlanError, match="leaves the job folder|outside the job folder"):
        check_task_path(plan_input(tmp_path), value)


@posix_only  # creating symlinks needs extra rights on Windows
def test_task_paths_inside_the_job_folder_are_accepted_but_not_through_a_symlink_out(tmp_path: Path) -> None:
    inp = plan_input(tmp_path)
    assert check_task_path(inp, "tasks/task.0001.json") == inp.job_dir / "tasks" / "task.0001.json"
    assert check_task_path(inp, str(inp.job_dir / "out" / "a.exr")) == inp.job_dir / "out" / "a.exr"
    (inp.job_dir / "escape").symlink_to(tmp_path)
    with pytest.raises(PlanError, match="outside the job folder"):
        check_task_path(inp, "escape/secrets.txt")


# -- a real agent --------------------------------------------------------------------------------
@posix_only
def test_agent_refuses_a_group_writable_instruction_file_until_it_is_fixed(farm: Farm) -> None:
    agent = farm.start_agent("lab1-01")
    farm.wait_heartbeat(agent)
    path = farm.layout.instructions
    new = path.with_name("instructions.new")
    new.write_text(path.read_text() + stamp("*", "print('from a writable file')").format() + "\n")
    make_group_writable(new)
    os.replace(new, path)
    wait_for(lambda: f"refusing instruction file {path}" in farm.log("lab1-01"), 15, "the refusal in the log")
    assert "print: from a writable file" not in farm.log("lab1-01")
    path.chmod(0o644)  # the fix; the file's contents did not change
    wait_for(lambda: "print: from a writable file" in farm.log("lab1-01"), 15, "the command once the file is private")
    assert agent.alive()


@posix_only
def test_agent_refuses_a_user_module_others_can_write(farm: Farm) -> None:
    module = farm.layout.user_dir("student") / "Envy_Functions.py"
    module.write_text("def hello():\n    print('hello from NV')\n")
    make_group_writable(module)
    agent = farm.start_agent("lab1-01")
    farm.wait_heartbeat(agent)
    farm.send("* NV.hello()")
    wait_for(lambda: "NV.hello is not defined" in farm.log("lab1-01"), 15, "the NV call to be refused")
    log = farm.log("lab1-01")
    assert f"refusing user module {module}" in log and "hello from NV" not in log
