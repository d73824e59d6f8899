"""Secured instructions, the agent's side: StrictModes, and chaining instruction checks.

StrictModes (as in OpenSSH's sshd): on POSIX an agent refuses to read an
instruction file or a user module (``Envy_Functions.py``) that users other
than its owner can write, because whoever can write it can make the agent
run code. The one exception, also as in Debian's OpenSSH, is a group-writable
file whose group is the owner's private group (Ubuntu's default umask 002
makes every new file group-writable, but nobody else is in that group).

Windows has no mode bits: ACLs decide there (docs/admin-guide.md says how to
set them). ``strict_modes: false`` in the config turns the check off for
shares that report made-up modes (a CIFS mount with ``file_mode=0777``).
"""

from __future__ import annotations

import logging
import os
import stat as stat_mod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from envy.platform.files import others_can_write
from envy.platform.host import os_name
from envy.platform.strict_modes import chain_problem
from envy.share.fs import ShareFS

if TYPE_CHECKING:
    from envy.protocol.instructions import Instruction

log = logging.getLogger(__name__)

InstructionCheck = Callable[["Instruction"], bool]


def strict_mode_problem(
    path: Path, what: str, *, fs: ShareFS, st: os.stat_result | None = None, share_root: Path | None = None
) -> str | None:
    """Why ``path`` must not be trusted (one line), or None when only its owner can write it.

    ``st`` is a stat result the caller already has (the agent's poll stats the
    instruction file anyway), so the check costs no extra network round trip.
    A file that cannot be stat'ed is not refused here: reading it will fail
    or succeed on its own terms.
    """
    if os_name() == "windows":
        return None
    if st is None:
        try:
            st = fs.stat(path)
        except OSError:
            return None
    if not others_can_write(st):
        # As OpenSSH: the owner, every folder up to the share and each symlink count too (Must-hold 7).
        return chain_problem(path, share_root, what=what) if share_root is not None else None
    mode = stat_mod.S_IMODE(st.st_mode)
    if not st.st_mode & stat_mod.S_IWOTH and _is_private_group(st.st_gid, st.st_uid):
        return None
    who = "every user" if st.st_mode & stat_mod.S_IWOTH else f"group {_group_name(st.st_gid)!r}"
    return (
        f"refusing {what} {path}: {who} can write it (mode {mode:04o}); "
        f"fix with: chmod go-w '{path}' (or set strict_modes: false if the share's modes are not real)"
    )


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


def _is_private_group(gid: int, uid: int) -> bool:
    """True for a user-private group: named like its owner, the owner's primary group, no other members."""
    try:
        import grp
        import pwd

        owner = pwd.getpwuid(uid)
        group = grp.getgrgid(gid)
    except (ImportError, KeyError):
        return False  # unknown ids (NFS without id mapping): assume the worst
    return owner.pw_gid == gid and group.gr_name == owner.pw_name and set(group.gr_mem) <= {owner.pw_name}


def all_checks(checks: Sequence[InstructionCheck]) -> InstructionCheck | None:
    """One check that passes an instruction only when every one of ``checks`` does, in order.

    Signed mode and the lockdown policy both check instructions; the agent's
    builder (envy/agent/build.py) combines them here and hands the result to
    the agent, so neither replaces the other.
    """
    checks = tuple(checks)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def every(ins: Instruction) -> bool:
        return all(check(ins) for check in checks)  # all() stops at the first refusal, as before

    return every
