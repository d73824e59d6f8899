"""File operations whose behaviour differs between operating systems."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
import time
from collections.abc import Callable

from envy.platform.fresh_attrs import fresh_fstat
from envy.platform.host import os_name

# Windows reports a sharing violation (antivirus, indexer, a reader holding the
# file) as PermissionError; it clears within a second or so. An SMB share on a
# POSIX client (smbnetfs, found by `envy doctor`) refuses to replace a file
# another client holds open with EBUSY: a status file being read, the
# instruction file during an agent's poll (and EEXIST when the other client is
# another machine). All are retried the same way.
HELD_OPEN_ERRNOS = frozenset({errno.EBUSY, errno.EEXIST})
_REPLACE_RETRIES = 8
_REPLACE_FIRST_DELAY_S = 0.02


def replace_with_retry(src: str, dst: str) -> None:
    """``os.replace`` that retries briefly with backoff while the destination is held open."""
    retry_while_held_open(lambda: os.replace(src, dst))


def retry_while_held_open(replace: Callable[[], None]) -> None:
    """``replace`` (a rename over an existing file), retried briefly with backoff while the destination
    is held open (also a rename inside an open folder, envy/platform/pinned_folder.py)."""
    delay = _REPLACE_FIRST_DELAY_S
    for attempt in range(_REPLACE_RETRIES):
        try:
            replace()
            return
        except OSError as exc:
            # (os.replace never refuses an existing file on POSIX by itself: EEXIST is the SMB client's.)
            held_open = exc.errno in HELD_OPEN_ERRNOS or (isinstance(exc, PermissionError) and os_name() == "windows")
            if not held_open or attempt == _REPLACE_RETRIES - 1:
                raise
            time.sleep(delay)
            delay *= 2


def rename_no_replace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` but never overwrite an existing ``dst`` (raises FileExistsError).

    Windows' rename already refuses to overwrite. POSIX rename silently
    overwrites, so there we link then unlink; where the share does not support
    hard links (some SMB and FUSE mounts) we fall back to check-then-rename,
    which is only used for human-driven resets, never for claims.
    """
    if os_name() == "windows":
        os.rename(src, dst)
        return
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EACCES):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "destination exists", dst) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def others_can_write(st: os.stat_result) -> bool:
    """True when a file's mode lets users other than its owner write it (POSIX only)."""
    if os_name() == "windows":
        return False  # ACLs decide there; see docs/admin-guide.md
    return bool(st.st_mode & (stat_mod.S_IWGRP | stat_mod.S_IWOTH))


class NotARegularFile(OSError):
    """A share path that is a FIFO, device, socket or folder: reading it could block or never end."""


def read_regular(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``, which must be a regular file.

    Opened non-blocking where the OS has O_NONBLOCK, so a FIFO put in a file's
    place cannot hang the open (ENGINEERING §1.12); then fstat on the open
    handle (no race with a rename between check and read) refuses anything
    that is not a regular file. O_NOFOLLOW is not used: a share file may
    legitimately be a symlink the admin made; confinement is checked elsewhere.
    The fstat fetches the attributes from the file server (fresh_attrs.py): a
    caching client (sshfs 20 s) otherwise clamps the read to the size it cached,
    and a status file another machine rewrote a little longer reads torn (issue 14).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO/device with no other end
            raise NotARegularFile(errno.ENXIO, "not a regular file (a socket or a device)", path) from None
        raise
    try:
        st = fresh_fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise NotARegularFile(errno.EINVAL, f"not a regular file ({file_kind(st.st_mode)})", path)
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def file_kind(mode: int) -> str:
    if stat_mod.S_ISFIFO(mode):
        return "a FIFO"
    if stat_mod.S_ISDIR(mode):
        return "a folder"
    if stat_mod.S_ISSOCK(mode):
        return "a socket"
    if stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        return "a device"
    return "not a plain file"
