"""Creating a render's output folder without ever building a tree under an unmounted drive.

An unmounted network drive on Linux and macOS is an empty folder (the mount
point); ``os.makedirs("<mount>/proj/out")`` there succeeds and leaves a
``proj/out`` tree that hides the real one when the share comes back
(ENGINEERING §1.8). The planner creates an output folder right after a claim,
and a share that goes away between the claim and that call (a window a busy
CPU widens to seconds) used to get exactly that tree.

So an output folder is made one level at a time below its nearest existing
folder, and when that folder is one of the job's roots (the share, a project
root) or above it, the root must show it is really there first: the share by
its sentinel asked of the server, a project root by not being empty. Each
level is a single ``mkdir``: if the drive goes away half-way, the next level
fails (its parent is gone) instead of being recreated. On Windows a missing
drive fails by itself; the checks cost a ``stat`` per level there too.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Sequence
from pathlib import Path

from envy.share.fs import ShareFS
from envy.share.layout import SENTINEL


class ShareAway(OSError):
    """The folder would be created under a share (or project drive) that is not there now."""


def make_output_folder(path: Path, roots: Sequence[Path], share_root: Path | None, fs: ShareFS) -> None:
    """Create ``path`` and its missing parents below the nearest existing folder; ShareAway when
    that folder is a root (or above one) that does not show it is mounted."""
    missing: list[str] = []
    here = Path(os.path.abspath(path))
    while not _is_dir(here, fs):
        if here.parent == here:
            raise ShareAway(f"cannot create {path}: no part of it exists (is the drive mounted?)")
        missing.append(here.name)
        here = here.parent
    if not missing:
        return
    for root in roots:
        if _inside(Path(os.path.abspath(root)), here):
            _check_root_is_there(here, root, share_root, fs, path)
    for name in reversed(missing):
        here = here / name
        fs.mkdir(here)


def _check_root_is_there(here: Path, root: Path, share_root: Path | None, fs: ShareFS, wanted: Path) -> None:
    is_share = share_root is not None and Path(os.path.abspath(share_root)) == Path(os.path.abspath(root))
    if is_share:
        assert share_root is not None
        try:
            there = fs.on_server(Path(share_root) / SENTINEL)
        except OSError:
            there = False
        if not there:
            raise ShareAway(f"cannot create {wanted}: the share {share_root} is not there (no {SENTINEL})")
        return
    try:
        empty = not fs.listdir(here)
    except OSError:
        empty = True
    if empty:
        raise ShareAway(f"cannot create {wanted}: {here} is empty (is the project drive mounted?)")


def _is_dir(path: Path, fs: ShareFS) -> bool:
    try:
        return stat_mod.S_ISDIR(fs.stat(path).st_mode)
    except OSError:
        return False


def _inside(child: Path, parent: Path) -> bool:
    """``child`` is ``parent`` or below it (lexically; both absolute)."""
    return child == parent or parent in child.parents
