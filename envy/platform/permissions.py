"""Who besides its owner can write a file or folder (POSIX mode bits; Windows has ACLs instead).

The same rule as the agent's StrictModes (envy/security.py): group-writable is
fine when the group is the owner's private group (Ubuntu's umask 002).
"""

from __future__ import annotations

import os
import stat as stat_mod

from envy.platform.host import os_name


def mode_bits_mean_something() -> bool:
    """False on Windows, where ACLs, not mode bits, decide who may write."""
    return os_name() != "windows"


def other_writers(st: os.stat_result) -> str | None:
    """'every user', "group 'x'", or None when only the owner (or a private group) can write."""
    if not mode_bits_mean_something():
        return None
    if st.st_mode & stat_mod.S_IWOTH:
        return "every user"
    if st.st_mode & stat_mod.S_IWGRP and not is_private_group(st.st_gid, st.st_uid):
        return f"group {group_name(st.st_gid)!r}"
    return None


def is_sticky(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat_mod.S_ISVTX)


def group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


def is_private_group(gid: int, uid: int) -> bool:
    """A user-private group: named like its owner, the owner's primary group, no other members."""
    try:
        import grp
        import pwd

        owner = pwd.getpwuid(uid)
        group = grp.getgrgid(gid)
    except (ImportError, KeyError):
        return False  # unknown ids (NFS without id mapping): assume the worst
    return owner.pw_gid == gid and group.gr_name == owner.pw_name and set(group.gr_mem) <= {owner.pw_name}
