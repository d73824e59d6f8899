"""The fresh read of the ShareFS seam: open + fstat + read, compared by content, never a cached stat.

On real network mounts with the caching labs use (sshfs defaults, Samba via
smbnetfs), a change published through one mount is seen by the very next fresh
read through another mount, while sshfs's ``stat`` still answers from its
20 s attribute cache.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from envy.share.atomic import atomic_write
from envy.share.fs import ShareFS
from shares import network_share  # noqa: F401  (fixture)

LIMIT = 64 * 1024


def test_same_bytes_are_unchanged_and_new_bytes_are_returned(tmp_path: Path) -> None:
    fs, path = ShareFS(), tmp_path / "instructions.txt"
    path.write_bytes(b"one\n")
    first = fs.read_if_changed(path, None, LIMIT)
    assert first is not None and first.data == b"one\n" and not first.truncated
    assert fs.read_if_changed(path, first.digest, LIMIT) is None
    atomic_write(path, b"two\n", ShareFS())
    second = fs.read_if_changed(path, first.digest, LIMIT)
    assert second is not None and second.data == b"two\n"


def test_a_change_that_keeps_size_and_mtime_is_still_seen(tmp_path: Path) -> None:
    """A 2 s-timestamp share or a cached attribute can keep (size, mtime); the bytes decide."""
    fs, path = ShareFS(), tmp_path / "instructions.txt"
    path.write_bytes(b"aaaa")
    st = os.stat(path)
    first = fs.read_if_changed(path, None, LIMIT)
    path.write_bytes(b"bbbb")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = fs.read_if_changed(path, first.digest if first else None, LIMIT)
    assert changed is not None and changed.data == b"bbbb"


def test_a_file_larger_than_the_limit_is_read_up_to_the_limit_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 100)
    fresh = ShareFS().read_if_changed(path, None, 10)
    assert fresh is not None and fresh.data == b"x" * 10 and fresh.truncated
    exact = ShareFS().read_if_changed(path, None, 100)
    assert exact is not None and not exact.truncated


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_a_fifo_in_place_of_the_file_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "instructions.txt"
    os.mkfifo(path)
    outcome: list[BaseException] = []

    def poll() -> None:
        try:
            ShareFS().read_if_changed(path, None, LIMIT)
        except OSError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "the fresh read blocked on a FIFO"
    assert outcome and "regular file" in str(outcome[0])


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ShareFS().read_if_changed(tmp_path / "nope", None, LIMIT)


@pytest.mark.netshare
def test_a_change_through_one_mount_is_seen_by_the_next_fresh_read_on_another(network_share) -> None:  # noqa: F811 (the imported fixture)
    share = network_share(mounts=2)
    writer, reader = share.mounts
    fs = ShareFS()
    atomic_write(writer / "instructions.txt", b"# header\n", ShareFS())
    known = fs.read_if_changed(reader / "instructions.txt", None, LIMIT)
    assert known is not None
    before = os.stat(reader / "instructions.txt")  # warms the reader's attribute cache
    assert fs.read_if_changed(reader / "instructions.txt", known.digest, LIMIT) is None

    atomic_write(writer / "instructions.txt", b"# header\n[id] * print('hi')\n", ShareFS())
    if share.kind == "sshfs":
        # The reason for all this: sshfs's stat still answers from its attribute cache.
        after = os.stat(reader / "instructions.txt")
        assert (after.st_size, after.st_ino) == (before.st_size, before.st_ino)

    fresh = fs.read_if_changed(reader / "instructions.txt", known.digest, LIMIT)
    assert fresh is not None and fresh.data.endswith(b"print('hi')\n")


@pytest.mark.netshare
def test_a_status_file_rewritten_longer_through_one_mount_reads_whole_on_another(network_share) -> None:  # noqa: F811 (the imported fixture)
    """Observers (reclaimer, seats, status) read other agents' status files: a read clamped to the size
    the client cached would be torn JSON for as long as sshfs caches attributes (20 s)."""
    share = network_share(mounts=2)
    writer, reader = share.mounts
    atomic_write(writer / "lab1-01.json", b'{"counter": 9}', ShareFS())
    assert ShareFS().read_bounded(reader / "lab1-01.json", LIMIT) == b'{"counter": 9}'
    os.stat(reader / "lab1-01.json")  # warms the reader's attribute cache with the old size
    atomic_write(writer / "lab1-01.json", b'{"counter": 10, "state": "rendering"}', ShareFS())
    assert ShareFS().read_bounded(reader / "lab1-01.json", LIMIT) == b'{"counter": 10, "state": "rendering"}'
