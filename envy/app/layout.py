"""Where the share copy of Envy lives inside the Envy folder (see envy/app/__init__.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

APP_FOLDER = "app"
LAUNCHER = "envy.pyz"
CURRENT = "current.json"
PROTOCOL = "protocol.json"
BUILD_INFO = "build.json"

# A version names a folder on every OS: letters, digits, dots, dashes, underscores, plus.
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")


def validate_version(version: str) -> str:
    if not _VERSION_RE.match(version) or ".." in version:
        raise ValueError(f"bad version {version!r}: use letters, digits, '.', '_', '+' and '-' (at most 64)")
    return version


@dataclass(frozen=True)
class AppLayout:
    share: Path

    @property
    def folder(self) -> Path:
        return Path(self.share) / APP_FOLDER

    @property
    def launcher(self) -> Path:
        return self.folder / LAUNCHER

    @property
    def current(self) -> Path:
        return self.folder / CURRENT

    @property
    def protocol(self) -> Path:
        return self.folder / PROTOCOL

    @property
    def versions(self) -> Path:
        return self.folder / "versions"

    def version_dir(self, version: str) -> Path:
        return self.versions / validate_version(version)

    def version_pyz(self, version: str) -> Path:
        return self.version_dir(version) / LAUNCHER

    def build_info(self, version: str) -> Path:
        return self.version_dir(version) / BUILD_INFO

    def start_script(self, suffix: str) -> Path:
        return self.folder / f"start_envy_agent{suffix}"
