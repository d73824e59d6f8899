"""A folder held open while a file is moved inside it (the last step of a frame, Must-hold 6).

A share writer can swap an output folder, or one of its parents, for a symlink
to another user's folder between the moment Envy checked the path and the
moment it moves the rendered image into place. Where POSIX offers directory
file descriptors, the folder is opened one component at a time from a root
(``openat`` with ``O_NOFOLLOW | O_DIRECTORY``: a component that is a link now
fails), and the move is ``renameat`` inside that open folder: once open, the
folder is the one that was checked, whatever its path names later.

Windows has no directory descriptors in Python (``os.supports_dir_fd`` is
empty there): the caller checks the path component by component just before
the move and the move goes by path, which leaves the window of one rename.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Sequence
from types import TracebackType

from envy.platform.files import rename_no_replace, replace_with_retry, retry_while_held_open

# Errors of the share that mean "no hard links here" (some SMB and FUSE mounts): fall back to
# check-then-rename, inside the open folder all the same.
_NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EACCES)


class FolderChanged(OSError):
    """A component of the folder is not a plain folder now (a link or a file was put in its place)."""


def dir_fds_supported() -> bool:
    return (os.open in os.supports_dir_fd and os.rename in os.supports_dir_fd and os.stat in os.supports_dir_fd
            and os.link in os.supports_dir_fd and os.unlink in os.supports_dir_fd
            and hasattr(os, "O_NOFOLLOW") and hasattr(os, "O_DIRECTORY"))


class PinnedFolder:
    """One folder, reached without following a link below its root; moves happen inside it.

    ``fd`` is None where the OS has no directory descriptors: then every call goes by path.
    """

    def __init__(self, path: str, fd: int | None) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, root: str, parts: Sequence[str]) -> PinnedFolder:
        """``root``/``parts``, each part opened inside the one before without following links.

        ``root`` itself is followed (the share or an admin's project root, already resolved by the
        caller). FolderChanged when a part is a link or not a folder; other OSErrors as ``open``.
        """
        path = os.path.join(root, *parts)
        if not dir_fds_supported():
            return cls(path, None)
        flags = os.O_RDONLY | os.O_DIRECTORY
        fd = os.open(root, flags)
        here = root
        try:
            for part in parts:
                here = os.path.join(here, part)
                try:
                    next_fd = os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise FolderChanged(exc.errno, "not a plain folder now (a link or a file in its place)",
                                            here) from None
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    def lstat(self, name: str) -> os.stat_result | None:
        """``name`` in this folder, not following a link; None when it is not there."""
        try:
            if self.fd is None:
                return os.lstat(os.path.join(self.path, name))
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def move(self, src: str, dst: str, *, replace: bool) -> None:
        """Rename ``src`` to ``dst`` inside this folder; without ``replace`` an existing ``dst`` raises
        FileExistsError and is left as it is."""
        if self.fd is None:
            (replace_with_retry if replace else rename_no_replace)(os.path.join(self.path, src),
                                                                  os.path.join(self.path, dst))
            return
        if replace:
            fd = self.fd
            retry_while_held_open(lambda: os.rename(src, dst, src_dir_fd=fd, dst_dir_fd=fd))
            return
        try:
            os.link(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            if self.lstat(dst) is not None:
                raise FileExistsError(errno.EEXIST, "destination exists", os.path.join(self.path, dst)) from None
            os.rename(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            return
        os.unlink(src, dir_fd=self.fd)

    def is_file(self, name: str) -> bool:
        st = self.lstat(name)
        return st is not None and stat_mod.S_ISREG(st.st_mode)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> PinnedFolder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
