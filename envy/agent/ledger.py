"""The agent's local record of the commands it has run, so each runs at most once.

Ownership: only the polling thread records (the lockdown policy's refusals
run there too); kept on the local disk (never the share: it is private to this agent and
written at every command). An id is recorded *before* its command runs: if
the agent dies mid-command, the command is not run again after the restart
(at most once, as promised). Entries older than twice the command lifetime
are pruned: such commands are no longer eligible anyway.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


class CommandLedger:
    def __init__(self, path: Path, lifetime: Callable[[], float]) -> None:
        """``lifetime``: the command lifetime now (the live config's, so a reload() reaches it)."""
        self.path = path
        self.lifetime = lifetime
        self._ran: dict[str, float] = {}  # id -> issue time (shell clock)
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._ran = {str(k): float(v) for k, v in data.get("ran", {}).items()}
        except FileNotFoundError:
            self._ran = {}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("command ledger %s unreadable (%s); starting a new one", self.path, exc)
            self._ran = {}

    def has_run(self, command_id: str) -> bool:
        return command_id in self._ran

    def record(self, command_id: str, issued: float, now: float) -> None:
        """Record a command as run and save at once (before running it)."""
        self._ran[command_id] = issued
        cutoff = now - 2 * self.lifetime()
        self._ran = {k: v for k, v in self._ran.items() if v >= cutoff}
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"ran": self._ran}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
