"""StrictModes as OpenSSH means it: owner, every folder up to the share, and symlinks by lstat (Must-hold 7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envy.platform.host import account_name
from envy.platform.strict_modes import chain_problem

pytestmark = pytest.mark.skipif(os.name != "posix",
                                reason="mode bits and uids are POSIX; on Windows ACLs are the admin's part")
NOBODY = 65534


def foreign_gid() -> int:
    import grp
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    for group in grp.getgrall():
        if group.gr_name != me and (os.geteuid() == 0 or group.gr_gid in os.getgroups()):
            return group.gr_gid
    pytest.skip("no group other than our private one to give a folder to")


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    module = root / "users" / "alice" / "Envy_Functions.py"
    module.parent.mkdir(parents=True)
    module.write_text("def hello():\n    return 1\n")
    for p in (module, module.parent, module.parent.parent):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def module_of(share: Path) -> Path:
    return share / "users" / "alice" / "Envy_Functions.py"


def test_a_private_module_in_private_folders_passes(share: Path) -> None:
    assert chain_problem(module_of(share), share, what="user module") is None


def test_a_group_writable_user_folder_is_refused_though_the_file_is_private(share: Path) -> None:
    # The attack: a classmate in the group moves their own module into the user's folder.
    folder = module_of(share).parent
    os.chown(folder, -1, foreign_gid())
    folder.chmod(0o775)
    problem = chain_problem(module_of(share), share, what="user module")
    assert problem is not None and "can write" in problem and str(folder) in problem and "\n" not in problem


def test_a_file_owned_by_someone_else_is_refused(share: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file away")
    os.chown(module_of(share), NOBODY, -1)
    problem = chain_problem(module_of(share), share, uid=os.getuid(), what="user module")
    assert problem is not None and "is owned by" in problem
    os.chown(module_of(share), 0, -1)
    assert chain_problem(module_of(share), share, uid=1000, what="user module") is None  # root may own it


def test_a_symlink_to_a_file_in_a_world_writable_folder_is_refused(share: Path, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o777)
    (drop / "evil.py").write_text("import os\n")
    (drop / "evil.py").chmod(0o644)
    module_of(share).unlink()
    os.symlink(drop / "evil.py", module_of(share))
    problem = chain_problem(module_of(share), share, what="user module")
    assert problem is not None and "every user can write" in problem and str(drop) in problem


def test_a_symlinked_user_folder_is_checked_where_it_points(share: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "alice"
    real.mkdir(parents=True)
    (real / "Envy_Functions.py").write_text("")
    (real / "Envy_Functions.py").chmod(0o644)
    real.chmod(0o755)
    real.parent.chmod(0o755)
    folder = module_of(share).parent
    module_of(share).unlink()
    folder.rmdir()
    os.symlink(real, folder)
    assert chain_problem(module_of(share), share, what="user module") is None
    real.chmod(0o757)
    assert "every user can write" in (chain_problem(module_of(share), share, what="user module") or "")


def test_identity_is_the_os_account_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    monkeypatch.setenv("USER", "somebody-else")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert account_name() == pwd.getpwuid(os.getuid()).pw_name


def test_an_agent_acts_for_its_os_account_whatever_user_says_unless_an_admin_names_someone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from envy.platform import host

    env = {"USER": "classmate", "LOGNAME": "classmate", "USERNAME": "classmate"}
    monkeypatch.setattr(host, "is_admin", lambda: False)
    assert host.user_name(env) == account_name() != "classmate"  # a student cannot take a classmate's seats
    monkeypatch.setattr(host, "is_admin", lambda: True)
    assert host.user_name(env) == "classmate"  # a service an admin starts for a student
    assert host.user_name({}) == account_name()


def test_a_seat_folder_made_by_another_user_is_refused(tmp_path: Path) -> None:
    from envy.policy.seats import SeatOwner, Seats
    from envy.share.fs import ShareFS
    from envy.share.layout import ShareLayout, init_share

    if os.geteuid() != 0:
        pytest.skip("only root can make a folder owned by another user")
    init_share(tmp_path / "share", "student", ShareFS())
    layout = ShareLayout(tmp_path / "share")
    seats = Seats(layout, "student", SeatOwner("lab1-01", 1, "n"), ShareFS())
    seats.ensure_folder()  # our own: fine
    seats.folder.rmdir()
    seats.folder.mkdir()  # the squatter's mkdir seats/student
    os.chown(seats.folder, NOBODY, -1)
    with pytest.raises(PermissionError, match="is owned by") as caught:
        seats.ensure_folder()
    assert str(seats.folder) in str(caught.value) and "admin" in str(caught.value)
