"""StrictModes as OpenSSH means it (Must-hold 7): the file, its folders, its owner, its links.

OpenSSH's ``StrictModes`` refuses ``authorized_keys`` unless the file and
every folder above it (up to the home folder) are owned by the user or root
and writable by nobody else. Checking only the file's own mode bits is not
enough: whoever can write a parent folder can rename the file away and put
their own in its place, and a symlink's mode says nothing about its target.

:func:`chain_problem` checks, with ``lstat`` (never following a link):

* the file and each folder above it, up to (not including) ``stop`` (the
  share root: its writers are the share's writers, which docs/security.md
  names), are owned by ``uid`` (the OS account the agent runs for) or root;
* none of them is writable by group or others, except a group that is the
  owner's private group (Debian's OpenSSH makes the same exception for
  umask 002);
* a sticky folder (``/tmp``, mode 1777) passes: others can add names there
  but cannot rename or remove one they do not own;
* a symlink anywhere on the way is followed to its target, and the target's
  own chain is checked the same way (up to ``stop`` when inside it, else up to
  the filesystem root).

Windows has no mode bits or uids here: ACLs decide, and setting them is the
admin's part (docs/security.md, docs/admin-guide.md); :func:`chain_problem`
returns None there and :data:`WINDOWS_ADVICE` says what to set.
"""

from __future__ import annotations

import os
import stat as stat_mod
from pathlib import Path

WINDOWS_ADVICE = (
    "Windows: StrictModes is the admin's part. Give only the student (and Administrators/SYSTEM) "
    "write access to their users\\<name> folder and its files (icacls <folder> /inheritance:r "
    "/grant:r <user>:(OI)(CI)M Administrators:(OI)(CI)F SYSTEM:(OI)(CI)F)."
)
_MAX_LINKS = 16  # like the kernel's ELOOP limit: a link chain longer than this is refused


def chain_problem(path: Path, stop: Path, uid: int | None = None, what: str = "file") -> str | None:
    """Why ``path`` must not be trusted (one line), or None. See the module docstring."""
    if os.name == "nt":
        return None
    uid = os.getuid() if uid is None else uid
    return _check(Path(os.path.abspath(path)), Path(os.path.abspath(stop)), uid, what, path, 0)


def _check(path: Path, stop: Path, uid: int, what: str, shown: Path, links: int) -> str | None:
    current = path
    while True:
        if current == stop or current == current.parent:
            return None
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            current = current.parent  # not there (yet): its folders still decide who could put it there
            continue
        except OSError as exc:
            return f"refusing {what} {shown}: cannot check {current} ({exc.strerror or exc})"
        if stat_mod.S_ISLNK(st.st_mode):
            if links >= _MAX_LINKS:
                return f"refusing {what} {shown}: more than {_MAX_LINKS} symlinks on the way"
            target = Path(os.path.join(current.parent, os.readlink(current)))
            target = Path(os.path.normpath(target))
            inner_stop = stop if _inside(target, stop) else Path(target.anchor or "/")
            problem = _check(target, inner_stop, uid, what, shown, links + 1)
            if problem:
                return problem
        else:
            problem = _owner_problem(st, current, uid) or _mode_problem(st, current)
            if problem:
                return f"refusing {what} {shown}: {problem}"
        current = current.parent


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _owner_problem(st: os.stat_result, where: Path, uid: int) -> str | None:
    if st.st_uid in (uid, 0):
        return None
    return f"{where} is owned by {_user_name(st.st_uid)!r}, not by {_user_name(uid)!r} (the user this agent runs for)"


def _mode_problem(st: os.stat_result, where: Path) -> str | None:
    mode = stat_mod.S_IMODE(st.st_mode)
    if stat_mod.S_ISDIR(st.st_mode) and st.st_mode & stat_mod.S_ISVTX:
        return None  # sticky (/tmp): others may add names but never rename or remove ours
    if st.st_mode & stat_mod.S_IWOTH:
        return f"every user can write {where} (mode {mode:04o}); fix with: chmod o-w '{where}'"
    if st.st_mode & stat_mod.S_IWGRP and not is_private_group(st.st_gid, st.st_uid):
        return f"group {_group_name(st.st_gid)!r} can write {where} (mode {mode:04o}); fix with: chmod g-w '{where}'"
    return None


def is_private_group(gid: int, uid: int) -> bool:
    """True for a user-private group: named like its owner, the owner's primary group, no other members."""
    try:
        import grp
        import pwd

        owner = pwd.getpwuid(uid)
        group = grp.getgrgid(gid)
    except (ImportError, KeyError):
        return False  # unknown ids (NFS without id mapping): assume the worst
    return owner.pw_gid == gid and group.gr_name == owner.pw_name and set(group.gr_mem) <= {owner.pw_name}


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)
