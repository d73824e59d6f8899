"""Which kind of file system a folder lives on (doctor's advice depends on it).

Linux reads /proc/self/mountinfo; macOS and Windows are not asked (they
answer "unknown" and the advice covers every kind).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from envy.platform.host import os_name


@dataclass(frozen=True)
class MountInfo:
    mount_point: str
    fs_type: str  # e.g. "fuse.sshfs", "cifs", "nfs4", "ext4"; "unknown" when not found
    source: str

    @property
    def kind(self) -> str:
        """The family in users' words: sshfs, smb, nfs, local or unknown."""
        t = self.fs_type.lower()
        if "sshfs" in t:
            return "sshfs"
        if t in ("cifs", "smb3", "smbfs") or "smb" in t:
            return "smb"
        if t.startswith("nfs"):
            return "nfs"
        if t == "unknown":
            return "unknown"
        return "local"


UNKNOWN = MountInfo("", "unknown", "")


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_of(path: Path) -> MountInfo:
    """The mount that holds ``path`` (the longest mount point that is a prefix of it)."""
    if os_name() != "linux":
        return UNKNOWN
    target = os.path.realpath(path)
    best = UNKNOWN
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                left, sep, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if not sep or len(fields) < 5 or len(tail) < 2:
                    continue
                point = _unescape(fields[4])
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best.mount_point):
                    best = MountInfo(point, tail[0], _unescape(tail[1]))
    except OSError:
        return UNKNOWN
    return best
