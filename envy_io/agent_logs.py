"""Finding an agent's log on the share (or under ENVY_LOG_DIR) and reading its end."""

from __future__ import annotations

from pathlib import Path

from envy.logs import AGENT_LOG, log_dir_for, tail
from envy.platform.host import local_dirs
from envy.share.layout import ShareLayout
from envy.share.names import is_junk
from envy_io.errors import FarmError, UsageError

HOSTS_SHOWN = 12


def logs_root(layout: ShareLayout) -> Path:
    """The folder holding one sub-folder per host (``<share>/logs``, or ENVY_LOG_DIR)."""
    return log_dir_for(layout.logs_dir, "x", local_dirs().logs).parent


def hosts_with_logs(layout: ShareLayout) -> list[str]:
    root = logs_root(layout)
    try:
        names = [n for n in root.iterdir() if n.is_dir() and not is_junk(n.name)]
    except OSError:
        return []
    return sorted(n.name for n in names)


def agent_log(layout: ShareLayout, host: str) -> Path:
    """The host's ``agent.log``; an unknown host is a UsageError naming the hosts that have logs."""
    known = hosts_with_logs(layout)
    # The share may be case-insensitive (SMB, macOS) or not: match names as the agents wrote them.
    match = next((name for name in known if name.casefold() == host.strip().casefold()), None)
    if match is None:
        if not known:
            raise UsageError(f"unknown host {host!r}: no agent has written a log yet in {logs_root(layout)}")
        shown = ", ".join(known[:HOSTS_SHOWN]) + (", ..." if len(known) > HOSTS_SHOWN else "")
        raise UsageError(f"unknown host {host!r}: hosts with logs are {shown}")
    path = logs_root(layout) / match / AGENT_LOG
    if not path.is_file():
        raise FarmError(f"{match} has no {AGENT_LOG} yet in {path.parent}")
    return path


def tail_agent_log(layout: ShareLayout, host: str, lines: int) -> list[str]:
    path = agent_log(layout, host)
    try:
        return tail(path, lines)
    except OSError as exc:
        raise FarmError(f"cannot read {path}: {exc.strerror or exc}") from None
