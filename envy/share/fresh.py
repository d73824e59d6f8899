"""Fresh reads of small share files through caching network clients (ENGINEERING §1.11).

A network client answers ``stat()`` from its attribute cache: sshfs for 20 s
by default, the Linux kernel's FUSE layer for 1 s, NFS up to 60 s, the
Windows SMB client 10 s. Measured here (benchmarks/freshness.py, results in
docs/share-layout.md): on sshfs with default caching and on Samba through
smbnetfs, ``stat()`` lags (20 s and 1 s), ``fstat()`` of a freshly opened
handle lags up to 1 s, and a plain read after open returns new bytes but only
up to the *old* cached size, so a file that grew at its end reads exactly as
before. Fetching the open handle's attributes from the server first
(envy/platform/fresh_attrs.py) makes the read return the whole new file at
once; on NFS an open revalidates (close-to-open consistency) and on SMB an
open gets a new handle from the server. So a poll that must see another
machine's change within one interval opens the file, refreshes the handle's
attributes, reads it whole (it is small and capped) and compares the bytes
with what it saw last time: one open/fstat/read/close per poll and no
separate ``stat``.

The file is opened non-blocking and must be a regular file (a FIFO put in its
place cannot hang the poll), and at most ``limit`` bytes are read (§1.12).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat as stat_mod
from dataclasses import dataclass

from envy.platform.files import NotARegularFile, file_kind
from envy.platform.fresh_attrs import fresh_fstat

_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
               | getattr(os, "O_NOCTTY", 0))


@dataclass(frozen=True)
class FreshFile:
    """What one fresh read saw: the bytes (at most the limit), the handle's fstat, a digest of the bytes."""

    data: bytes
    stat: os.stat_result
    digest: str
    truncated: bool  # the file had more than ``limit`` bytes; ``data`` holds the first ``limit``


def digest_of(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_fresh(path: str, limit: int) -> FreshFile:
    """Open ``path``, fstat the handle, read at most ``limit`` bytes, close."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO/device with no other end
            raise NotARegularFile(errno.ENXIO, "not a regular file (a socket or a device)", path) from None
        raise
    try:
        st = fresh_fstat(fd)  # refreshes the size the client clamps reads to
        if not stat_mod.S_ISREG(st.st_mode):
            raise NotARegularFile(errno.EINVAL, f"not a regular file ({file_kind(st.st_mode)})", path)
        # Read what the server says the file holds (one read, as a rule), plus one byte
        # when that is over the limit, to tell "exactly ``limit``" from "longer". No
        # extra read for end-of-file: a poll is a few requests, not one more.
        want = min(st.st_size, limit + 1)
        chunks: list[bytes] = []
        got = 0
        while got < want:
            chunk = os.read(fd, min(want - got, 1 << 20))
            if not chunk:
                break  # shorter than the server said: it was replaced meanwhile; the next poll sees more
            chunks.append(chunk)
            got += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    truncated = len(data) > limit
    data = data[:limit]
    return FreshFile(data, st, digest_of(data), truncated)
