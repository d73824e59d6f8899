"""Moving a rendered image from its temp name to its final name, the last step of a frame (Must-hold 6).

The renderer writes ``<frame>.envy~tmp~<nonce><ext>`` in the output folder;
after the ownership check the worker moves it to ``<frame><ext>``. Between the
plan and this move a share writer may have swapped the output folder (or a
parent) for a symlink to another user's folder, or put a file at the final
name. So, right before the move:

1. the final name is confined again (``Confinement.check_output``: each
   component ``lstat``ed, a link must stay inside the allowed roots, the final
   name is not a link, folder or device);
2. the folder is resolved and opened one component at a time without
   following links (``ShareFS.open_folder``): a link swapped in after step 1
   fails the open, one swapped in after the open changes nothing, since the
   move happens inside the open folder (POSIX; on Windows by path, see
   envy/platform/pinned_folder.py);
3. the move never replaces a file Envy did not create for that frame: an
   existing final name is replaced only when the frame's output record
   (``jobs/<id>/outputs/<item>.json``, written when an earlier render of this
   frame completed: a reset, a re-render) lists it. Otherwise the move is a
   no-replace rename, and a file that appears meanwhile is left alone.

Each refusal is a PathRefused naming the path; the worker fails the frame for good with it.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Collection
from pathlib import Path

from envy.platform.pinned_folder import FolderChanged
from envy.render.confine import Confinement, PathRefused
from envy.share.fs import ShareFS


def _same(a: Path, b: Path) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def publish_output(temp: Path, final: Path, confinement: Confinement, ours: Collection[Path], fs: ShareFS) -> None:
    """Move ``temp`` to ``final`` (same folder); ``ours``: the files Envy recorded writing for this frame.

    PathRefused when the move could lead outside or replace a file that is not ours; other OSErrors
    are the share's (the caller tries again)."""
    if not _same(temp.parent, final.parent):
        raise PathRefused(f"output {final}: its temp image {temp} is in another folder")
    final = confinement.check_output(final, "output")
    root, parts = confinement.resolved_below_root(final.parent, "output folder")
    try:
        folder = fs.open_folder(root, parts)
    except FolderChanged as exc:
        raise PathRefused(f"output folder {final.parent} changed while Envy checked it: {exc.filename} is "
                          f"{exc.strerror}; nothing was written there") from None
    with folder:
        if not folder.is_file(temp.name):
            raise PathRefused(f"output {final}: the rendered image is not in the output folder {final.parent} "
                              f"(was the folder replaced while it rendered?)")
        existing = folder.lstat(final.name)
        if existing is not None:
            if not stat_mod.S_ISREG(existing.st_mode):
                raise PathRefused(f"output {final} exists and is not a plain file Envy wrote: refusing to replace it")
            if not any(_same(final, f) for f in ours):
                raise PathRefused(_not_ours(final))
        if existing is not None:
            folder.move(temp.name, final.name, replace=True)
            return
        try:
            folder.move(temp.name, final.name, replace=False)
        except FileExistsError:  # appeared since the look above: not ours either
            raise PathRefused(_not_ours(final)) from None


def _not_ours(final: Path) -> str:
    return (f"output {final} already exists and Envy did not render it for this frame (no output record says so): "
            f"refusing to replace it; move it away or choose another output folder, then reset the frame")
