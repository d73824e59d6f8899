"""Make an open file's size and times come from the file server, not the client's cache.

Why: a network client keeps a file's attributes for a while (the Linux kernel's
FUSE layer 1 s, sshfs 20 s, NFS up to 60 s) and clamps reads to the size it
has cached. A file that another machine replaced with a longer one then reads
as the old length: the first bytes of the new content, which for an
instructions file that gained a line at its end look exactly like the old
content. Measured on sshfs and Samba via smbnetfs (benchmarks/freshness.py).

Linux: ``statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC)`` makes the kernel
ask the file system for the attributes of the open handle now (FUSE sends a
GETATTR with the handle, which sshfs answers with an SFTP FSTAT; NFS sends a
GETATTR); the kernel stores them, so the ``os.fstat`` and reads that follow
see the server's size. Elsewhere (or without statx in the C library) plain
``os.fstat``: NFS close-to-open and the SMB clients' per-open attributes are
what remains, see docs/share-layout.md.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

_AT_EMPTY_PATH = 0x1000
_AT_STATX_FORCE_SYNC = 0x2000
_STATX_BASIC_STATS = 0x07FF
_STATX_BUFFER = 256  # sizeof(struct statx) is 256 bytes


def _linux_statx() -> Callable[[int], None] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        statx = libc.statx
    except (OSError, AttributeError):
        return None
    statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    statx.restype = ctypes.c_int
    buffer = ctypes.create_string_buffer(_STATX_BUFFER)
    empty = b""

    def force(fd: int) -> None:
        # The buffer is scratch space: the point is the kernel's refreshed inode, read by os.fstat.
        if statx(fd, empty, _AT_EMPTY_PATH | _AT_STATX_FORCE_SYNC, _STATX_BASIC_STATS, buffer) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return force


_force: Callable[[int], None] | None = _linux_statx() if sys.platform.startswith("linux") else None


def fresh_fstat(fd: int) -> os.stat_result:
    """``os.fstat(fd)`` with the attributes fetched from the file server first where the OS allows."""
    if _force is not None:
        _force(fd)  # an OSError here is a share error like any other read error
    return os.fstat(fd)
