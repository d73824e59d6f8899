"""The filesystem seam: every operation Envy does on the share goes through here.

A ``ShareFS`` is passed to the code that touches the share (like watchdog's
``PollingObserverVFS`` takes ``stat`` and ``listdir``), so tests can inject a
rename that lies, ESTALE on read, a stale listing or ENOSPC without mocking
the code under test. The default implementation is the real ``os`` calls;
``REAL_FS`` is chosen by the entry points only (envy/cli.py, envy_io/cli.py,
the demo, the Houdini API) and handed down; no signature defaults to it.
"""

from __future__ import annotations

import os
from pathlib import Path

from envy.platform.files import read_regular, rename_no_replace, replace_with_retry
from envy.platform.pinned_folder import PinnedFolder
from envy.share.end_write import open_at_end
from envy.share.fresh import FreshFile, read_fresh

PathLike = str | Path


class ShareFS:
    """Real filesystem operations. Subclass and override one method to inject a fault."""

    def stat(self, path: PathLike) -> os.stat_result:
        return os.stat(path)

    def read_if_changed(self, path: PathLike, known: str | None, limit: int) -> FreshFile | None:
        """The file's bytes (at most ``limit``), fresh from the server, or None if they are
        still those whose digest is ``known``.

        The fresh poll (envy/share/fresh.py): open + fstat + read + close instead
        of a ``stat`` the client answers from its attribute cache. Raises
        FileNotFoundError and the other OSErrors like ``open`` does.
        """
        fresh = read_fresh(os.fspath(path), limit)
        return None if fresh.digest == known else fresh

    def exists(self, path: PathLike) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    def on_server(self, path: PathLike) -> bool:
        """Whether the file server has ``path`` now, asked so that no client cache can answer.

        An open: an SMB client opens a handle on the server, NFS revalidates at open,
        where ``stat`` may be answered from the attribute cache. A folder (which Windows
        cannot open this way) or an unreadable file falls back to ``stat``.
        """
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return False
        except OSError:
            return self.exists(path)
        os.close(fd)
        return True

    def listdir(self, path: PathLike) -> list[str]:
        return os.listdir(path)

    def read_bytes(self, path: PathLike) -> bytes:
        # Open, read, close at once: never hold a share file open (ENGINEERING §1.2).
        with open(path, "rb") as f:
            return f.read()

    def read_bounded(self, path: PathLike, limit: int) -> bytes:
        """At most ``limit`` bytes of a regular file; NotARegularFile for a FIFO, device, socket or folder.

        Every reader of a file others write goes through this (envy/share/bounded.py):
        a FIFO cannot hang it and a huge file is never read whole (ENGINEERING §1.12).
        """
        return read_regular(str(path), limit)

    def write_new(self, path: PathLike, data: bytes) -> None:
        """Create ``path`` (must not exist), write, flush, fsync and close it."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o664)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            # close is where NFS reports delayed write errors: let it raise.
            os.close(fd)

    def append(self, path: PathLike, data: bytes) -> None:
        """Append to a file only this process writes (a render's own log); never a shared file (§1.1)."""
        with open_at_end(path) as f:  # not O_APPEND: some SMB clients refuse it (issue 14)
            f.write(data)

    def replace(self, src: PathLike, dst: PathLike) -> None:
        replace_with_retry(str(src), str(dst))

    def rename(self, src: PathLike, dst: PathLike) -> None:
        os.rename(src, dst)

    def rename_no_replace(self, src: PathLike, dst: PathLike) -> None:
        rename_no_replace(str(src), str(dst))

    def open_folder(self, root: PathLike, parts: tuple[str, ...]) -> PinnedFolder:
        """``root``/``parts`` held open without following a link below ``root``, for a move inside it
        (envy/platform/pinned_folder.py); FolderChanged when a part is a link or not a folder now."""
        return PinnedFolder.open(os.fspath(root), parts)

    def unlink(self, path: PathLike) -> None:
        os.unlink(path)

    def set_mtime_ns(self, path: PathLike, mtime_ns: int) -> None:
        os.utime(path, ns=(mtime_ns, mtime_ns))

    def makedirs(self, path: PathLike) -> None:
        os.makedirs(path, exist_ok=True)

    def mkdir(self, path: PathLike) -> None:
        """One level, its parent must exist (never a tree under an unmounted drive); an existing folder is fine."""
        try:
            os.mkdir(path)
        except FileExistsError:
            if not os.path.isdir(path):
                raise


REAL_FS = ShareFS()
