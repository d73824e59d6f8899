"""Publish a file atomically and read it back (ENGINEERING §1.2 and §1.3)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from envy.share.fs import PathLike, ShareFS
from envy.share.names import temp_name_for

log = logging.getLogger(__name__)


def atomic_write(path: PathLike, data: bytes | str, fs: ShareFS) -> None:
    """Write ``data`` to a unique temp name beside ``path``, fsync, then replace ``path``.

    Readers see the old or the new file, never a torn one. On failure the temp
    file is removed (best effort) and the error propagates: the caller decides
    whether to retry.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = os.fspath(path)
    folder, name = os.path.split(path)
    temp = os.path.join(folder, temp_name_for(name))
    try:
        fs.write_new(temp, data)
        fs.replace(temp, path)
    except BaseException:
        try:
            fs.unlink(temp)
        except OSError:
            pass
        raise


def atomic_write_json(path: PathLike, obj: Any, fs: ShareFS) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True) + "\n", fs)


def read_json(path: PathLike, fs: ShareFS, kind: str = "json") -> Any:
    """Read a JSON file, bounded and regular (share/bounded.py).

    ValueError (a ShareFileError, naming the path) when it is not a plain
    file, over its kind's cap, too deeply nested, corrupt or truncated.
    """
    from envy.share.bounded import read_share_json

    return read_share_json(fs, path, kind)


def rename_attempt(src: PathLike, dst: PathLike, fs: ShareFS) -> bool:
    """Try to rename ``src`` to ``dst`` (a name carrying our identity). True if we won.

    A rename is an attempt: on NFS a retransmitted RENAME can report ENOENT
    although the first transmission succeeded, so after any error we stat the
    destination we chose; if it is there, it is ours (nobody else uses our name).
    And a success is checked too: smbnetfs (a FUSE SMB client) reported success
    to both of two mounts renaming the same file in 12 of 300 contested rounds
    here, while the server had done only one (benchmarks/claims.py's notes,
    tests/test_smbshare_fixture.py). The destination is asked of the server
    (an open, not a cached ``stat``): only the real winner's is there.
    """
    try:
        fs.rename(src, dst)
    except OSError as exc:
        try:
            fs.stat(dst)
        except OSError:
            if not isinstance(exc, FileNotFoundError):
                log.debug("rename %s -> %s failed: %s", src, dst, exc)
            return False
        log.info("rename %s -> %s reported %s but the destination exists: it succeeded", src, dst, exc)
        return True
    if fs.on_server(dst):
        return True
    log.warning("rename %s -> %s reported success but the server has no %s: another agent won it "
                "(the share's client reported a lost race as a success)", src, dst, os.path.basename(dst))
    return False
