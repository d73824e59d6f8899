"""This machine's local folders for Envy (state, config, logs), resolved once at start.

Precedence for each: the environment variable, else the OS's usual place.
``ENVY_STATE_DIR`` (private state: ledgers, seats of children, keys),
``ENVY_CONFIG_DIR`` (the user's ``config.yaml``) and ``ENVY_LOG_DIR`` (agent
logs instead of ``<share>/logs``; None when unset). Entry points build one
``LocalDirs`` and pass it down; nothing below them reads these variables.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_SHARE_KEY_CHARS = 10

STATE_ENV = "ENVY_STATE_DIR"
CONFIG_ENV = "ENVY_CONFIG_DIR"
LOG_ENV = "ENVY_LOG_DIR"


@dataclass(frozen=True)
class LocalDirs:
    state: Path
    config: Path
    logs: Path | None = None  # None: agents log on the share (<share>/logs/<host>)

    @classmethod
    def from_environment(cls, env: Mapping[str, str], system: str) -> LocalDirs:
        """``system`` is ``os_name()`` (envy/platform/host.py: ``local_dirs()`` passes both)."""
        logs = env.get(LOG_ENV)
        return cls(
            state=Path(env[STATE_ENV]) if env.get(STATE_ENV) else default_state_dir(env, system),
            config=Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else default_config_dir(env, system),
            logs=Path(logs) if logs else None,
        )

    def agent_state(self, host: str, share: str | os.PathLike[str]) -> Path:
        """One agent's private folder, per host name and share (envy/local_state.py says why)."""
        return self.state / "agents" / f"{host.lower()}-{share_key(share)}"

    @property
    def user_config_file(self) -> Path:
        return self.config / "config.yaml"


def default_state_dir(env: Mapping[str, str], system: str) -> Path:
    home = Path.home()
    if system == "windows":
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local") / "Envy"
    if system == "darwin":
        return home / "Library" / "Application Support" / "Envy"
    return Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "envy"


def default_config_dir(env: Mapping[str, str], system: str) -> Path:
    home = Path.home()
    if system == "windows":
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "Envy"
    if system == "darwin":
        return home / "Library" / "Application Support" / "Envy"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "envy"


def share_key(share: str | os.PathLike[str]) -> str:
    """A short stable key for a share's folder as this machine names it (case-folded where the OS is)."""
    text = os.path.normcase(os.path.abspath(os.fspath(share))).rstrip("/\\") or "/"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_SHARE_KEY_CHARS]
