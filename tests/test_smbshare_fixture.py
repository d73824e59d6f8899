"""Pins what the loopback Samba share (tests/smbshare.py) does, as tests/test_netshare_fixture.py does for sshfs.

smbd with ``case sensitive = no`` and a user login, mounted twice through
smbnetfs: each mount one machine with its own client caches.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import smbshare as smbshare_mod
from envy.share.atomic import rename_attempt
from envy.share.fs import ShareFS
from netshare import in_mount_table, wait_for
from smbshare import require_smbshare, smbshare  # noqa: F401  (smbshare is a fixture)

pytestmark = pytest.mark.netshare
DEADLINE = 10.0
ROUNDS = 60  # about 10 s; at a lie rate of 4 % most runs see the client lie at least once


def test_write_through_one_mount_is_read_through_another_and_lands_in_the_export(smbshare) -> None:  # noqa: F811 (the imported fixture)
    share = smbshare(mounts=2)
    (share.mounts[0] / "hello.txt").write_text("from machine 0")
    assert (share.mounts[1] / "hello.txt").read_text() == "from machine 0"
    assert (share.export / "hello.txt").read_text() == "from machine 0"


def test_names_compare_case_insensitively_and_keep_their_case(smbshare) -> None:  # noqa: F811 (the imported fixture)
    share = smbshare(mounts=2)
    (share.mounts[0] / "Shot.0001.POV").write_text("scene")
    assert (share.mounts[1] / "shot.0001.pov").read_text() == "scene"
    assert os.listdir(share.mounts[1]) == ["Shot.0001.POV"]
    with pytest.raises(FileExistsError):
        os.open(share.mounts[1] / "SHOT.0001.pov", os.O_WRONLY | os.O_CREAT | os.O_EXCL)


def test_a_login_is_needed_no_guest(smbshare) -> None:  # noqa: F811 (the imported fixture)
    share = smbshare(mounts=1)
    conf = (share.smb_conf).read_text()
    assert "map to guest = never" in conf and f"valid users = {share.user}" in conf
    assert (share.export / "private-check").exists() is False
    (share.mounts[0] / "private-check").write_text("x")  # the login works: writes are allowed
    assert (share.export / "private-check").stat().st_uid == os.getuid()


class Recording(ShareFS):
    """The real filesystem, noting what the client said of the rename itself."""

    def __init__(self, i: int, said: dict[int, bool]) -> None:
        self.i, self.said = i, said

    def rename(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        try:
            super().rename(src, dst)
            self.said[self.i] = True
        except OSError:
            self.said[self.i] = False
            raise


def test_claims_over_two_mounts_have_exactly_one_winner_though_the_client_says_two(smbshare) -> None:  # noqa: F811 (the imported fixture)
    """smbnetfs reports success to both of two mounts renaming the same file now and then (12 of
    300 contested rounds here, at load 5): the server did one rename, the loser's client lied.
    Envy's claim (rename_attempt) asks the server for its destination after a success, so
    exactly one of the two wins every round, whatever the client said."""
    share = smbshare(mounts=2)
    (share.export / "queue").mkdir()
    (share.export / "claimed").mkdir()
    lies = 0
    for round_no in range(ROUNDS):
        name = f"frame{round_no}"
        (share.export / "queue" / name).write_text("work")
        for m in share.mounts:
            wait_for(lambda m=m, name=name: (m / "queue" / name).exists(), DEADLINE, f"{name} visible")
        won: dict[int, bool] = {}
        raw: dict[int, bool] = {}
        go = threading.Barrier(2)

        # name, go and the dicts are bound now: each round's threads are joined before the next round.
        def claim(i: int, name: str = name, go: threading.Barrier = go, won: dict[int, bool] = won,
                  raw: dict[int, bool] = raw) -> None:
            go.wait()
            src, dst = share.mounts[i] / "queue" / name, share.mounts[i] / "claimed" / f"{name}.host{i}"
            won[i] = rename_attempt(src, dst, Recording(i, raw))

        threads = [threading.Thread(target=claim, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        claimed = sorted(p.name for p in (share.export / "claimed").glob(f"{name}.*"))
        assert len(claimed) == 1, claimed
        assert sorted(won.values()) == [False, True], (won, raw, claimed)
        assert won[int(claimed[0][-1])], (won, claimed)  # the winner is the one whose rename the server did
        lies += all(raw.values())
    print(f"smbnetfs reported two successes in {lies} of {ROUNDS} rounds; claims had one winner in each")


def test_unmount_removes_the_share_root_and_remount_brings_it_back(smbshare) -> None:  # noqa: F811 (the imported fixture)
    share = smbshare(mounts=2)
    (share.mounts[0] / "sentinel").write_text("x")
    share.unmount(1)
    assert not share.is_mounted(1) and not share.mounts[1].exists()
    share.remount(1)
    assert (share.mounts[1] / "sentinel").read_text() == "x"


def test_disconnect_leaves_a_dead_mount_that_remount_fixes(smbshare) -> None:  # noqa: F811 (the imported fixture)
    share = smbshare(mounts=2)
    share.disconnect(0)
    assert in_mount_table(share.mount_points[0])
    with pytest.raises(OSError):
        os.listdir(share.mounts[0])
    share.remount(0)
    assert os.listdir(share.mounts[0]) == []


def test_nothing_outside_the_temp_folder_is_used(smbshare, tmp_path: Path) -> None:  # noqa: F811 (the imported fixture)
    share = smbshare(mounts=1)
    conf = share.smb_conf.read_text()
    for line in conf.splitlines():
        if any(key in line for key in ("dir", "directory", "passdb", "log file", "path =")):
            # The state folders go through a short link in /tmp (socket path limit): its target counts.
            value = Path(line.split("=", 1)[1].strip().removeprefix("tdbsam:"))
            assert value.resolve().is_relative_to(tmp_path.resolve()), line


def test_missing_tools_skip_on_a_dev_machine_and_fail_under_ci(monkeypatch) -> None:
    monkeypatch.setattr(smbshare_mod, "smbshare_available", lambda: "missing smbnetfs (test)")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_smbshare()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_smbshare()
