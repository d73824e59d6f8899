"""Where everything lives inside the Envy folder on the share (see docs/share-layout.md).

::

    <share>/
      ENVY_SHARE.json          sentinel: this folder is an Envy share (never created by an agent)
      config.yaml              farm settings (optional)
      instructions.txt         commands for agents; written only by Envy IO
      instructions.lock/       the writers' mutex for instructions.txt (see share/lock.py)
      status/<host>.json       one ping/status file per agent, written only by that agent
      logs/<host>/agent.log    the agent's log (rotated), and logs/<host>/children/*.log
      jobs/<job id>.json       render and cache jobs; written only by Envy IO
      jobs/<job id>/           task files of frame-range, husk and cache jobs
      users/<user>/            the user's folder: config.yaml, Envy_Functions.py, IO_functions.py
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from envy import __version__
from envy.share.atomic import atomic_write
from envy.share.fs import ShareFS

log = logging.getLogger(__name__)

SENTINEL = "ENVY_SHARE.json"
INSTRUCTIONS = "instructions.txt"


class ShareMissing(RuntimeError):
    """The sentinel is not there: the share is unmounted, or this is not an Envy folder."""


@dataclass(frozen=True)
class ShareLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def sentinel(self) -> Path:
        return self.root / SENTINEL

    @property
    def instructions(self) -> Path:
        return self.root / INSTRUCTIONS

    @property
    def instructions_lock(self) -> Path:
        return self.root / "instructions.lock"

    @property
    def status_dir(self) -> Path:
        return self.root / "status"

    def status_file(self, host: str) -> Path:
        return self.status_dir / f"{host.lower()}.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def host_logs(self, host: str) -> Path:
        return self.logs_dir / host.lower()

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def users_dir(self) -> Path:
        return self.root / "users"

    def user_dir(self, user: str) -> Path:
        return self.users_dir / user

    @property
    def farm_config(self) -> Path:
        return self.root / "config.yaml"

    def is_mounted(self, fs: ShareFS) -> bool:
        """True when the sentinel is there (ENGINEERING §1.8)."""
        try:
            fs.stat(self.sentinel)
        except OSError:
            return False
        return True

    def require(self, fs: ShareFS) -> None:
        if not self.is_mounted(fs):
            raise ShareMissing(
                f"{self.root} is not an Envy share (no {SENTINEL}): is the drive mounted? "
                f"Create a new share with: envy init {self.root}"
            )


def make_dirs_within(base: Path, *parts: str) -> Path:
    """Create ``base/part1/part2...`` one level at a time, never ``base`` itself.

    Used for folders on the share: if the share is not mounted, ``base`` (an
    Envy folder such as logs/ or jobs/) is missing and this raises
    FileNotFoundError instead of building a fresh tree under the mount point.
    """
    path = Path(base)
    for part in parts:
        path = path / part
        path.mkdir(exist_ok=True)
    return path


def init_share(root: Path, user: str, fs: ShareFS) -> list[Path]:
    """Create the Envy folder: layout, the user's folder from user_template/, then the sentinel.

    The sentinel is written last so a half-created tree is never taken for a
    share. Existing files are kept (running init again is safe). Returns what was created.
    """
    layout = ShareLayout(root)
    created: list[Path] = []
    for folder in (layout.root, layout.status_dir, layout.logs_dir, layout.jobs_dir, layout.users_dir):
        if not folder.exists():
            fs.makedirs(folder)
            created.append(folder)
    created += copy_user_template(layout.user_dir(user))
    if not layout.instructions.exists():
        atomic_write(layout.instructions, instructions_header(), fs)
        created.append(layout.instructions)
    if not layout.sentinel.exists():
        # The id tells a re-created share from the old one at the same path (envy/local_state.py).
        info = {"envy": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "id": uuid.uuid4().hex}
        atomic_write(layout.sentinel, json.dumps(info) + "\n", fs)
        created.append(layout.sentinel)
    return created


def instructions_header() -> str:
    return (
        "# Envy instruction file. Written by envy-io; each line is\n"
        "#   [ID ISSUED] SELECTOR COMMAND      e.g. [0001a2b3c4d5e6 2026-01-01T10:00:00Z] lab3 03 render()\n"
        "# Lines you add by hand without the [..] stamp are stamped by envy-io on its next write.\n"
    )


def copy_user_template(dest: Path) -> list[Path]:
    """Copy the bundled user_template/ into ``dest``, never overwriting the user's own files."""
    created: list[Path] = []
    template = resources.files("user_template")
    dest.mkdir(parents=True, exist_ok=True)
    for item in template.iterdir():
        if item.name.startswith((".", "__")) or not item.is_file():
            continue
        target = dest / item.name
        if not target.exists():
            with resources.as_file(item) as src:
                shutil.copyfile(src, target)
            created.append(target)
    return created
