"""Version folders: ``v001``, ``v002``, ... so a new cache never overwrites an older one.

The next version is one more than the highest there, never a gap: a
``v002`` someone deleted is not reused, so an old path in a HIP file never
points at a different cache. Reserving is ``mkdir`` of the new folder, which
only one submitter can win; a loser simply tries the next number. (On NFS a
retransmitted mkdir may report "exists" although it was ours: the number is
then skipped, which wastes a name but overwrites nothing.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from envy.render.jobs import JobError

_VERSION_RE = re.compile(r"^v(\d{3,})$", re.IGNORECASE)
MAX_TRIES = 50


def version_name(number: int) -> str:
    return f"v{number:03d}"


def existing_versions(root: Path) -> list[int]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(_VERSION_RE.match, names) if m)


def next_version_folder(root: str | Path) -> Path:
    """The next free version folder in ``root`` (not created): ``root/v001`` in an empty folder."""
    root = Path(root)
    found = existing_versions(root)
    return root / version_name((found[-1] if found else 0) + 1)


def reserve_version_folder(root: str | Path) -> Path:
    """Create and return the next free version folder in ``root`` (creating ``root`` if needed)."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(f"cannot create the version folder root {root}: {exc.strerror or exc}") from None
    candidate = next_version_folder(root)
    for _ in range(MAX_TRIES):
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number = int(_VERSION_RE.match(candidate.name).group(1))  # type: ignore[union-attr]
            candidate = root / version_name(max(number + 1, int(next_version_folder(root).name[1:])))
        except OSError as exc:
            raise JobError(f"cannot create version folder {candidate}: {exc.strerror or exc}") from None
    raise JobError(f"{root}: could not reserve a version folder after {MAX_TRIES} tries")
