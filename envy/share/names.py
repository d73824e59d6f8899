"""Strict names: which files on the share are ours, and which are junk to ignore.

Every listing on the share is filtered through here (ENGINEERING §1.9): we
act only on names our own patterns match and silently skip what file
managers, NFS and Office leave behind.
"""

from __future__ import annotations

import re
import secrets

# A temp file is ``.<final name>.envy-tmp-<random>``; readers ignore it.
TEMP_MARK = ".envy-tmp-"
_TEMP_RE = re.compile(r"^\..+\.envy-tmp-[0-9a-f]{12}$")

# Names the OS, file managers and NFS create that we never act on.
_JUNK_RE = re.compile(
    r"^(\.DS_Store|\._.*|\.nfs.*|Thumbs\.db|desktop\.ini|~\$.*|\.~lock\..*|.*\.swp|\.smbdelete.*)$",
    re.IGNORECASE,
)



def temp_name_for(final_name: str) -> str:
    return f".{final_name}{TEMP_MARK}{secrets.token_hex(6)}"


def is_temp(name: str) -> bool:
    return bool(_TEMP_RE.match(name))


def is_junk(name: str) -> bool:
    """True for names Envy must ignore: OS/editor litter and our own temp files."""
    return bool(_JUNK_RE.match(name)) or is_temp(name)


def nonce() -> str:
    """A per-start random token that makes an agent's identity unique across restarts."""
    return secrets.token_hex(4)
