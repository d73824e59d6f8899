"""Permissions per the threat model (docs/admin-guide.md section 4).

Whoever can write the instruction file, the share root (a rename replaces the
instruction file), a user's folder (their Envy_Functions.py runs on agents) or
the farm config can make agents run code. Agents must be able to write
status/, logs/, jobs/ and seats/, and a shared seats/ needs the sticky bit so
users cannot remove each other's seats.
"""

from __future__ import annotations

import os
from pathlib import Path

from envy.doctor.result import CheckResult, Verdict
from envy.platform.permissions import is_sticky, mode_bits_mean_something, other_writers
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.names import is_junk

NAME = "permissions"
_USER_FILES = ("Envy_Functions.py", "IO_functions.py", "config.yaml")

WINDOWS_ACL_ADVICE = [
    "Windows shows no mode bits: set the ACLs on the file server (docs/admin-guide.md section 4), e.g.",
    r'icacls \\fileserver\envy /inheritance:r /grant "EnvyAdmins:(OI)(CI)F" /grant "Students:(RX)"',
    r'icacls \\fileserver\envy\jobs /grant "Students:(OI)(CI)M"   (and the same for status, logs, seats)',
    r'icacls \\fileserver\envy\users\jsmith /grant "jsmith:(OI)(CI)M"',
    "a class farm where every student may write instructions.txt needs signed mode",
]


def check_permissions(layout: ShareLayout, fs: ShareFS) -> CheckResult:
    if not mode_bits_mean_something():
        return CheckResult(
            NAME, Verdict.SKIP, "not checked on Windows (ACLs decide, not mode bits)", WINDOWS_ACL_ADVICE
        )
    problems: list[str] = []  # the farm can be taken over: FAIL
    cautions: list[str] = []  # works, but not as the guide sets it up: WARN
    advice: list[str] = []
    root = layout.root

    def writers(path: Path) -> str | None:
        try:
            return other_writers(fs.stat(path))
        except OSError:
            return None

    for path, what in ((layout.instructions, "the instruction file"), (layout.farm_config, "the farm config")):
        who = writers(path)
        if who:
            problems.append(f"{who} can write {what} {path}")
            advice.append(f"chmod go-w '{path}'  (or use signed mode for a class farm, docs/admin-guide.md section 5)")
    who = writers(root)
    if who == "every user":
        problems.append(f"every user can write the share root {root} (and so replace instructions.txt)")
        advice.append(f"chmod o-w '{root}'")
    elif who:
        cautions.append(f"{who} can write the share root {root}: they can replace instructions.txt")
        advice.append(f"one student's farm: chmod g-w '{root}'; a class farm: turn on signed mode")
    for user_dir in _user_folders(layout, fs):
        for path in (user_dir, *(user_dir / name for name in _USER_FILES)):
            who = writers(path)
            if who:
                problems.append(f"{who} can write {path} (its code runs on agents)")
                advice.append(f"chmod go-w '{path}'")
    seats = root / "seats"
    try:
        st = fs.stat(seats)
    except OSError:
        st = None
    if st is not None and other_writers(st) and not is_sticky(st):
        cautions.append(f"others can write {seats} without the sticky bit: users can remove each other's seats")
        advice.append(f"chmod 1777 '{seats}'")
    for folder in (layout.status_dir, layout.logs_dir, layout.jobs_dir):
        if folder.is_dir() and not os.access(folder, os.W_OK):
            problems.append(f"you cannot write {folder}: your agents cannot work here")
            advice.append(f"give the farm's users write access to {folder} (docs/admin-guide.md section 4)")
    if problems:
        return CheckResult(NAME, Verdict.FAIL, "; ".join(problems), advice + cautions_note(cautions))
    if cautions:
        return CheckResult(NAME, Verdict.WARN, "; ".join(cautions), advice)
    return CheckResult(
        NAME,
        Verdict.OK,
        "only their owners can write instructions.txt, the config and the user folders",
        ["mode bits seen through this mount; an SMB mount with file_mode=0777 shows made-up modes"],
    )


def cautions_note(cautions: list[str]) -> list[str]:
    return [f"also: {c}" for c in cautions]


def _user_folders(layout: ShareLayout, fs: ShareFS) -> list[Path]:
    try:
        names = fs.listdir(layout.users_dir)
    except OSError:
        return []
    return [layout.users_dir / n for n in sorted(names) if not is_junk(n) and (layout.users_dir / n).is_dir()]
