"""Fresh folder listings through caching network clients (issue 14, Must-hold 1).

sshfs keeps a folder's listing 20 s by default (the Windows SMB client 10 s):
a job another machine submitted a moment ago is missing from a plain listing.
``listdir_fresh`` makes a change of its own in the folder first, which drops
the cached listing; a ``render()`` lists the jobs that way, so its job starts
at once instead of after the cache time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envy.protocol.sender import InstructionSender
from envy.share.fresh_listing import listdir_fresh
from envy.share.fs import REAL_FS, ShareFS
from envy.share.layout import ShareLayout, init_share
from envy.share.names import is_temp
from farm import Farm, wait_for
from netshare import net_share, require_netshare
from render_helpers import standin_profile, submit_folder
from shares import network_share  # noqa: F401  (fixture)

# Far above the waits below: a test that passes cannot have waited for the cache to expire.
LONG_CACHE_S = 300.0


@pytest.mark.netshare
def test_a_fresh_listing_shows_what_another_mount_just_made_and_leaves_nothing(network_share) -> None:  # noqa: F811
    share = network_share(mounts=2)
    writer, reader = share.mounts
    (writer / "jobs").mkdir()
    assert os.listdir(reader / "jobs") == []  # the reader's client now holds this listing
    (writer / "jobs" / "new.json").write_text("{}")
    if share.kind == "sshfs":
        assert os.listdir(reader / "jobs") == [], "sshfs answered the listing from its cache (why this exists)"
    assert listdir_fresh(ShareFS(), reader / "jobs") == ["new.json"]
    assert [n for n in os.listdir(share.export / "jobs") if is_temp(n)] == [], "the probe was left behind"


def test_an_old_probe_a_crash_left_is_removed_and_a_young_one_kept(tmp_path: Path) -> None:
    old, young = tmp_path / ".look.envy-tmp-0123456789ab", tmp_path / ".look.envy-tmp-ba9876543210"
    old.write_bytes(b"")
    young.write_bytes(b"")
    os.utime(old, (1_000_000, 1_000_000))
    listdir_fresh(ShareFS(), tmp_path)
    assert not old.exists() and young.exists()


class ReadOnlyFS(ShareFS):
    """A folder this user may read but not write (the tests run as root, who may write anywhere)."""

    def write_new(self, path: str | Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))


def test_a_fresh_listing_of_a_folder_it_cannot_write_is_the_plain_listing(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    assert listdir_fresh(ReadOnlyFS(), tmp_path) == ["a.json"]


@pytest.mark.netshare
def test_render_starts_a_job_submitted_through_another_mount_without_waiting_for_the_listing_cache(
    tmp_path: Path,
) -> None:
    require_netshare()
    farm = Farm(tmp_path / "farm")
    quick = standin_profile(farm.root / "quick.yaml", "quick", "import sys; open(sys.argv[-1], 'wb').write(b'img')")
    with net_share(tmp_path / "net", mounts=2, cache_timeout=LONG_CACHE_S) as ns:
        init_share(ns.export / "envy", "student", fs=REAL_FS)
        workstation, machine, seen = ns.mounts[0] / "envy", ns.mounts[1] / "envy", ns.export / "envy"
        sender = InstructionSender(ShareLayout(workstation), 600, fs=REAL_FS)

        def submit_and_render(name: str) -> Path:
            shot = workstation / "shots" / name
            shot.mkdir(parents=True)
            (shot / f"{name}.0001.frame").write_text("{}")
            submit_folder(workstation, shot, renderer="quick", profiles=[quick], name=name)
            sender.send([f"lab1 01 render('{name}')"])
            return seen / "shots" / name

        def done(folder: Path) -> bool:
            return any(".envy~done~" in n for n in os.listdir(folder))

        try:
            farm.start_agent("lab1-01", share=machine, profiles=[str(quick)], remap=[f"{workstation},{machine}"])
            first = submit_and_render("first")
            wait_for(lambda: done(first), 90, "the first job's frame")  # the agent's client now caches jobs/
            second = submit_and_render("second")
            wait_for(lambda: done(second), 60, f"the second job's frame (sshfs caches the listing {LONG_CACHE_S:g} s)")
        finally:
            farm.stop_all()
