"""The network-share fixture itself: real sshfs mounts of a loopback sshd.

These prove the harness the share-protocol tests stand on: several mounts of
one export behave like several machines (shared data, separate caches), the
server decides renames, and a mount can vanish and come back.  They also pin
down the sshfs rename semantics Envy relies on (see test_rename_onto_existing_*).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path

import pytest

import netshare as netshare_mod
from netshare import (  # noqa: F401  (netshare is a fixture)
    in_mount_table,
    net_share,
    require_netshare,
    wait_for,
)

pytestmark = pytest.mark.netshare

DEADLINE = 5.0


def test_write_through_one_mount_is_visible_through_another(netshare):
    share = netshare(mounts=2)
    m0, m1 = share.mounts
    assert all(os.path.ismount(m) for m in share.mounts)
    assert m0 != m1 and share.export not in share.mounts

    (m0 / "job.yaml").write_text("frames: 1-10\n")

    wait_for(lambda: (m1 / "job.yaml").read_text() == "frames: 1-10\n", DEADLINE,
             "job.yaml through mount 1")
    assert (share.export / "job.yaml").read_text() == "frames: 1-10\n"

    # Subdirectories and the other direction, too.
    (m1 / "queue").mkdir()
    (m1 / "queue" / "a").write_bytes(b"\x00\x01")
    wait_for(lambda: (m0 / "queue" / "a").read_bytes() == b"\x00\x01", DEADLINE,
             "queue/a through mount 0")


def test_rename_through_other_mount_is_seen_on_the_export(netshare):
    share = netshare(mounts=2)
    m0, m1 = share.mounts
    (m0 / "queue").mkdir()
    (m0 / "claimed").mkdir()
    (m0 / "queue" / "job1").write_text("payload")

    os.rename(m1 / "queue" / "job1", m1 / "claimed" / "job1.host1")

    assert not (share.export / "queue" / "job1").exists()
    assert (share.export / "claimed" / "job1.host1").read_text() == "payload"
    # A fresh lookup through mount 0 asks the server.
    assert (m0 / "claimed" / "job1.host1").read_text() == "payload"


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "nocache"])
def test_rename_race_between_two_mounts_has_exactly_one_winner(netshare, cache):
    share = netshare(mounts=2, cache=cache)
    m0, m1 = share.mounts
    (share.export / "queue").mkdir()
    (share.export / "claimed").mkdir()

    for round_ in range(15):
        name = f"job{round_}"
        (m0 / "queue" / name).write_text(name)
        # Both "machines" have looked at the job, so both caches hold it.
        for m in share.mounts:
            wait_for(lambda m=m, name=name: (m / "queue" / name).exists(), DEADLINE, f"{name} on {m}")

        barrier = threading.Barrier(2)
        results: dict[int, object] = {}

        def claim(i: int, mount: Path, name: str, barrier: threading.Barrier, results: dict[int, object]) -> None:
            barrier.wait()
            try:
                os.rename(mount / "queue" / name, mount / "claimed" / f"{name}.host{i}")
                results[i] = "won"
            except OSError as exc:
                results[i] = exc

        threads = [threading.Thread(target=claim, args=(i, m, name, barrier, results))
                   for i, m in enumerate(share.mounts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=DEADLINE)
            assert not t.is_alive()

        winners = [i for i, r in results.items() if r == "won"]
        losers = [r for r in results.values() if r != "won"]
        assert len(winners) == 1, results
        assert len(losers) == 1 and isinstance(losers[0], FileNotFoundError), results
        assert sorted(p.name for p in (share.export / "claimed").glob(f"{name}.*")) == \
            [f"{name}.host{winners[0]}"]
        assert not (share.export / "queue" / name).exists()


def test_each_mount_has_its_own_cache(netshare):
    """With caching on, mount 1 keeps believing in a file mount 0 deleted (sshfs's
    dir/attr cache, 20 s by default) -- but the server still decides the rename."""
    share = netshare(mounts=2, cache=True)
    m0, m1 = share.mounts
    (m0 / "job").write_text("x")
    wait_for(lambda: (m1 / "job").exists(), DEADLINE, "job on mount 1")

    os.unlink(m0 / "job")

    assert not (m0 / "job").exists()
    assert (m1 / "job").exists(), "mount 1 should still have the stale cached entry"
    with pytest.raises(FileNotFoundError):
        os.rename(m1 / "job", m1 / "job.mine")
    assert os.listdir(share.export) == []


def test_without_cache_deletes_are_seen_at_once(netshare):
    share = netshare(mounts=2, cache=False)
    m0, m1 = share.mounts
    (m0 / "job").write_text("x")
    assert (m1 / "job").exists()
    os.unlink(m0 / "job")
    assert not (m1 / "job").exists()


@pytest.mark.parametrize(
    "posix_rename, options, overwrites",
    [
        (True, (), True),                       # OpenSSH default: posix-rename@openssh.com
        (True, ("workaround=rename",), True),   # workaround is forced off with posix-rename
        (False, (), False),                     # plain SFTP rename: link+unlink, EPERM
        (False, ("workaround=rename",), True),  # sshfs moves the target aside (not atomic)
    ],
    ids=["posix-rename", "posix-rename+workaround", "plain-sftp", "plain-sftp+workaround"],
)
def test_rename_onto_existing_destination(tmp_path, posix_rename, options, overwrites):
    """Documents sshfs semantics; Envy never renames onto an existing name."""
    require_netshare()
    with net_share(tmp_path, mounts=2, posix_rename=posix_rename, extra_options=options) as share:
        m0, m1 = share.mounts
        (m0 / "src").write_text("new")
        (m0 / "dst").write_text("old")
        if overwrites:
            os.rename(m1 / "src", m1 / "dst")
            assert sorted(os.listdir(share.export)) == ["dst"]
            assert (share.export / "dst").read_text() == "new"
        else:
            with pytest.raises(PermissionError):
                os.rename(m1 / "src", m1 / "dst")
            assert (share.export / "dst").read_text() == "old"
            assert (share.export / "src").read_text() == "new"
        # Renaming onto a fresh name works everywhere.
        (m0 / "a").write_text("a")
        os.rename(m1 / "a", m1 / "b")
        assert (share.export / "b").read_text() == "a"
        # link() never overwrites, whatever the rename flavour.
        with pytest.raises(FileExistsError):
            os.link(m1 / "b", m1 / "dst")


def test_exclusive_create_across_mounts(netshare):
    share = netshare(mounts=2)
    m0, m1 = share.mounts
    os.close(os.open(m0 / "lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    with pytest.raises(FileExistsError):
        os.close(os.open(m1 / "lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY))


def test_unmount_and_remount(netshare):
    share = netshare(mounts=2)
    m0, m1 = share.mounts
    (m0 / "before").write_text("1")
    wait_for(lambda: (m1 / "before").exists(), DEADLINE, "before on mount 1")

    share.unmount(1)
    assert not os.path.ismount(m1) and not in_mount_table(m1)
    assert share.sshfs_pid(1) is None
    assert not (m1 / "before").exists()  # just the empty local mount point now
    share.unmount(1)  # idempotent

    (m0 / "while_away").write_text("2")  # the other machine carries on

    share.remount(1)
    assert os.path.ismount(m1)
    assert (m1 / "before").read_text() == "1"
    assert (m1 / "while_away").read_text() == "2"


def test_unmount_while_busy_is_lazy(netshare):
    share = netshare(mounts=2)
    m0, m1 = share.mounts
    (m0 / "open").write_text("data")
    f = open(m1 / "open", "rb", buffering=0)  # keeps mount 1 busy
    try:
        share.unmount(1)
        assert not in_mount_table(m1)
        # The file held open on the vanished share now fails like a lost connection.
        with pytest.raises(OSError) as info:
            f.read()
        assert info.value.errno == errno.ENOTCONN
    finally:
        with contextlib.suppress(OSError):
            f.close()
    share.remount(1)
    assert (m1 / "open").read_text() == "data"


def test_disconnect_leaves_a_dead_mount_that_remount_fixes(netshare):
    share = netshare(mounts=2)
    m0, m1 = share.mounts
    (m0 / "f").write_text("x")
    share.disconnect(1)
    with pytest.raises(OSError) as info:
        os.listdir(m1)
    assert info.value.errno == errno.ENOTCONN
    assert in_mount_table(m1)
    assert (m0 / "f").read_text() == "x"  # other machines unaffected

    share.remount(1)
    assert (m1 / "f").read_text() == "x"


def test_teardown_leaves_nothing_behind_even_on_failure(tmp_path):
    require_netshare()
    with pytest.raises(RuntimeError, match="boom"):
        with net_share(tmp_path, mounts=3) as share:
            mounts = list(share.mounts)
            sshd_pid = share.sshd_pid
            sshfs_pids = [share.sshfs_pid(i) for i in range(3)]
            busy = open(mounts[2] / "held", "w")  # a busy mount must not block teardown
            share.disconnect(1)  # nor a dead one
            raise RuntimeError("boom")
    with contextlib.suppress(OSError):  # its sshfs is gone: ENOTCONN on flush
        busy.close()
    assert not any(in_mount_table(m) for m in mounts)
    for pid in [sshd_pid, *sshfs_pids]:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"


def test_missing_tools_skip_locally_but_fail_on_ci(monkeypatch):
    monkeypatch.setattr(netshare_mod, "netshare_available", lambda: "missing sshfs (test)")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="missing sshfs"):
        require_netshare()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing sshfs"):
        require_netshare()


def test_availability_check_reports_this_machine():
    reason = netshare_mod.netshare_available()
    if os.environ.get("CI", "").lower() == "true":
        assert reason is None
    assert reason is None or isinstance(reason, str)
