"""A folder listing the network client cannot answer from its cache.

sshfs keeps a folder's listing 20 s by default and the Windows SMB client 10 s
(``DirectoryCacheLifetime``), so a job another machine submitted a moment ago
is missing from a plain listing for that long (issue 14: a ``render()`` that
started its first frame 19 s late). Both clients drop a folder's cached listing
when this machine itself changes the folder, so creating and removing a temp
name of our own (ignored by every reader: names.is_temp) before the listing
makes it fresh. Two small requests: used when a command asks to look now, never
at every poll.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from envy.share.fs import PathLike, ShareFS
from envy.share.names import temp_name_for
from envy.share.temp_cleanup import TEMP_MAX_AGE_S, final_name_of

log = logging.getLogger(__name__)

LOOK = "look"  # the probe's final name: .look.envy-tmp-<random>


def listdir_fresh(fs: ShareFS, folder: PathLike) -> list[str]:
    """``fs.listdir(folder)``, after a change of our own in ``folder`` that drops the client's cached listing."""
    probe = Path(folder) / temp_name_for(LOOK)
    try:
        fs.write_new(probe, b"")
        fs.unlink(probe)
    except OSError as exc:  # a read-only folder: the plain listing, as fresh as the client makes it
        log.debug("cannot refresh the listing of %s: %s", folder, exc)
    names = fs.listdir(folder)
    for name in names:
        if final_name_of(name) == LOOK:
            _remove_if_old(fs, Path(folder) / name)
    return names


def _remove_if_old(fs: ShareFS, leftover: Path) -> None:
    """A probe a crash left between its create and its remove (ENGINEERING §1.9): any looker removes it
    once it is old; a probe in flight is never that old."""
    try:
        if time.time() - fs.stat(leftover).st_mtime >= TEMP_MAX_AGE_S:
            fs.unlink(leftover)
    except OSError as exc:
        log.debug("cannot remove the old probe %s: %s", leftover, exc)
