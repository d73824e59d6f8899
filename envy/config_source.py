"""The agent's one live configuration: ``reload()`` swaps it whole, every part reads it at use.

Ownership: only the polling thread swaps it (the ``reload()`` built-in runs
there); the other threads (heartbeat, render workers, reclaimer, command
runner) read ``current`` each time they need a value and never keep a copy,
so a reload reaches them at their next use. A swap is one reference
assignment: a reader sees the old or the new config whole, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable

from envy.config import Config

ConfigLoader = Callable[[], Config]


class ConfigSource:
    def __init__(self, config: Config, load: ConfigLoader | None = None) -> None:
        self._current = config
        self._load = load

    @property
    def current(self) -> Config:
        return self._current

    @property
    def can_reload(self) -> bool:
        return self._load is not None

    def reload(self) -> Config:
        """Load the config again and swap it in; ConfigError leaves the current one in place."""
        if self._load is None:
            return self._current
        self._current = self._load()
        return self._current
