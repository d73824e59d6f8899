"""Removing temp files that crashed writers left behind (ENGINEERING §1.2 and §1.9).

Every publish writes ``.<final name>.envy-tmp-<12 hex>`` and renames it into
place; a writer killed between the two leaves the temp file. Readers ignore
such names, so they only cost space and listing time, but nobody else would
ever remove them. The rule: whoever writes a folder's files (its owner)
removes temp files *of its own final names* once they are older than
``TEMP_MAX_AGE_S``, judged on the file server's clock (the mtime is the
server's; ``now`` comes from ``ShareClock`` or a probe of the share's time).
A temp file that young may belong to a writer still at work: never touch it.

Owners: the shell (Envy IO) for ``instructions.txt`` in the Envy folder;
each agent for its own status file and its own logs folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from envy.share.fs import PathLike, ShareFS
from envy.share.names import TEMP_MARK, is_temp

log = logging.getLogger(__name__)

# A publish takes seconds at worst; a temp file this old has no living writer.
TEMP_MAX_AGE_S = 15 * 60.0


def final_name_of(temp_name: str) -> str | None:
    """``instructions.txt`` for ``.instructions.txt.envy-tmp-0123456789ab``; None for other names."""
    if not is_temp(temp_name):
        return None
    return temp_name[1:temp_name.rindex(TEMP_MARK)]


def remove_old_temp_files(
    folder: PathLike,
    fs: ShareFS,
    now: float,
    owns: Callable[[str], bool] | Iterable[str],
    older_than: float = TEMP_MAX_AGE_S,
) -> list[str]:
    """Remove temp files in ``folder`` whose final name we own and whose mtime is older than ``older_than``.

    ``owns`` is a predicate on the final name or a collection of final names.
    Returns the names removed. Share errors are logged at debug and end the
    round quietly: this is housekeeping, retried at the owner's next round.
    """
    owned = owns if callable(owns) else set(owns).__contains__
    removed: list[str] = []
    try:
        names = fs.listdir(folder)
    except OSError as exc:
        log.debug("temp clean-up: cannot list %s: %s", folder, exc)
        return removed
    for name in names:
        final = final_name_of(name)
        if final is None or not owned(final):
            continue
        path = os.path.join(os.fspath(folder), name)
        try:
            if now - fs.stat(path).st_mtime < older_than:
                continue
            fs.unlink(path)
        except FileNotFoundError:
            continue  # renamed into place or removed meanwhile
        except OSError as exc:
            log.debug("temp clean-up: cannot remove %s: %s", path, exc)
            continue
        removed.append(name)
    if removed:
        log.info("removed %d temp file(s) left by crashed writers in %s: %s", len(removed), folder,
                 ", ".join(sorted(removed)[:5]) + (" ..." if len(removed) > 5 else ""))
    return removed
