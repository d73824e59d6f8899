"""An agent run from the share copy moves to a newly published version by itself (issue 13).

The launcher (launcher_main.py) starts the agent with ``ENVY_APP_LAUNCHER`` and
``ENVY_APP_VERSION`` set. The agent then reads ``app/current.json`` (one small
read every ``ENVY_APP_CHECK_S`` seconds, default 30). When another version is
current, it takes no new frame, lets the frames in hand finish (a frame is
never given back for an upgrade: its render time would be lost), and exits
with 75 once nothing is in hand; the launcher starts the current version.
The launcher's own "stop it when idle" stays as the fallback for agents of
builds before this one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from envy.app.layout import AppLayout
from envy.app.publish import PublishError, read_current
from envy.share.fs import ShareFS

log = logging.getLogger(__name__)

DEFAULT_CHECK_S = 30.0


class VersionWatch:
    def __init__(self, app: AppLayout, mine: str, fs: ShareFS, every: float = DEFAULT_CHECK_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.mine = mine
        self.fs = fs
        self.every = every
        self.clock = clock
        self._next = 0.0
        self._newer: str | None = None
        self._announced = False

    def announce(self) -> bool:
        """True the first time it is asked: the move is logged once."""
        first, self._announced = not self._announced, True
        return first

    def newer(self) -> str | None:
        """The published version when it is not this agent's; read at most once per ``every`` seconds."""
        if self._newer is not None or self.clock() < self._next:
            return self._newer
        self._next = self.clock() + self.every
        try:
            current = read_current(self.app, self.fs)
        except (OSError, PublishError) as exc:  # a share hiccup or a bad pointer: keep this version
            log.debug("cannot read the published version: %s", exc)
            return None
        if current is not None and current.version != self.mine:
            self._newer = current.version  # published once: moving is decided, a rollback comes after it
        return self._newer


def version_watch_for(share: Path, fs: ShareFS, env: Mapping[str, str]) -> VersionWatch | None:
    """The watch for an agent its launcher started (``ENVY_APP_*`` set by it), else None."""
    mine = env.get("ENVY_APP_VERSION")
    if not env.get("ENVY_APP_LAUNCHER") or not mine:
        return None  # installed with pip, or run by hand: nothing to move to
    try:
        every = float(env.get("ENVY_APP_CHECK_S", DEFAULT_CHECK_S))
    except ValueError:
        every = DEFAULT_CHECK_S
    return VersionWatch(AppLayout(share), mine, fs, max(every, 0.1))
