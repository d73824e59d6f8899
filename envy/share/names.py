"""Strict names: which files on the share are ours, and which are junk to ignore.

Every listing on the share is filtered through here (ENGINEERING §1.9): we
act only on names our own patterns match and silently skip what file
managers, NFS and Office leave behind.
"""

from __future__ import annotations

import os
import re
import secrets
import time

# A temp file is ``.<final name>.envy-tmp-<random>``; readers ignore it.
TEMP_MARK = ".envy-tmp-"
_TEMP_RE = re.compile(r"^\..+\.envy-tmp-[0-9a-f]{12}$")

# Names the OS, file managers and NFS create that we never act on.
_JUNK_RE = re.compile(
    r"^(\.DS_Store|\._.*|\.nfs.*|Thumbs\.db|desktop\.ini|~\$.*|\.~lock\..*|.*\.swp|\.smbdelete.*)$",
    re.IGNORECASE,
)

# Leftover temp files are removed only when this old: a young one may belong
# to a writer that is between write and rename right now.
TEMP_MAX_AGE_S = 15 * 60


def temp_name_for(final_name: str) -> str:
    return f".{final_name}{TEMP_MARK}{secrets.token_hex(6)}"


def is_temp(name: str) -> bool:
    return bool(_TEMP_RE.match(name))


def is_junk(name: str) -> bool:
    """True for names Envy must ignore: OS/editor litter and our own temp files."""
    return bool(_JUNK_RE.match(name)) or is_temp(name)


def same_name(a: str, b: str) -> bool:
    """Compare names as the share does (SMB and macOS are case-insensitive)."""
    return a.casefold() == b.casefold()


def nonce() -> str:
    """A per-start random token that makes an agent's identity unique across restarts."""
    return secrets.token_hex(4)


def old_temp_files(names: list[str], folder: str, now: float | None = None) -> list[str]:
    """Temp files in ``folder`` older than TEMP_MAX_AGE_S (by the share's own mtime).

    Age is judged by comparing the file's mtime with the folder's mtime after a
    fresh write, both server clocks; callers without such a reference pass
    ``now`` and accept that the cut-off is coarse (15 minutes dwarfs drift).
    """
    now = time.time() if now is None else now
    stale = []
    for name in names:
        if not is_temp(name):
            continue
        try:
            if now - os.stat(os.path.join(folder, name)).st_mtime > TEMP_MAX_AGE_S:
                stale.append(name)
        except OSError:
            continue
    return stale
