"""Writing at the end of a file only this process writes, without ``O_APPEND``.

Why: some SMB clients refuse ``O_WRONLY|O_APPEND`` opens (ENXIO, then the
connection drops for seconds; issue 14), and O_APPEND is not atomic over NFS
anyway, so it buys nothing: each log on the share has one writer (its agent,
or one render attempt), which may simply open the file, seek to its end and
write there (ENGINEERING §1.1).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

PathLike = str | Path


_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)


def open_at_end(path: PathLike) -> BinaryIO:
    """The file opened for writing (created if missing), positioned at its end; never O_APPEND."""
    fd = os.open(path, _FLAGS, 0o664)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def open_text_at_end(path: PathLike, encoding: str = "utf-8", errors: str | None = None) -> io.TextIOWrapper:
    return io.TextIOWrapper(open_at_end(path), encoding=encoding, errors=errors, write_through=True)
