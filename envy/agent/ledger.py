"""The agent's local record of the commands it has run, so each runs at most once.

Kept on the local disk (never the share: it is private to this agent and
written at every command). An id is recorded *before* its command runs: if
the agent dies mid-command, the command is not run again after the restart
(at most once, as promised). Entries older than twice the command lifetime
are forgotten: such commands are no longer eligible anyway.

The file keeps its old name (ran-commands.json) so an upgraded agent still
reads the old whole-file JSON; new records are appended as "ID ISSUED" lines.

Recording costs O(1) (Must-hold 8): one line appended to a journal and
fsynced, one dict entry, pruning from the front of an issue-ordered queue.
The journal is rewritten (compacted) only when it holds more than twice the
live entries, so that cost is amortised over as many records. 10,000
commands used to cost 168 s because every record rewrote the whole file.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# A local file, but bounded anyway: a journal bigger than this is not ours.
_MAX_JOURNAL_BYTES = 64 * 1024 * 1024
_COMPACT_SLACK = 256


class CommandLedger:
    def __init__(self, path: Path, lifetime: Callable[[], float]) -> None:
        """``lifetime``: the command lifetime now (the live config's, so a reload() reaches it)."""
        self.path = path
        self.lifetime = lifetime
        self._ran: dict[str, float] = {}  # id -> issue time (shell clock)
        self._order: deque[tuple[float, str]] = deque()  # (issue time, id), in the order recorded
        self._journal_lines = 0
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(_MAX_JOURNAL_BYTES + 1)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("command ledger %s unreadable (%s); starting a new one", self.path, exc)
            return
        if len(raw) > _MAX_JOURNAL_BYTES:
            log.warning("command ledger %s is larger than %d bytes; starting a new one", self.path, _MAX_JOURNAL_BYTES)
            return
        text = raw.decode("utf-8", "replace")
        entries: list[tuple[str, float]]
        if text.lstrip().startswith("{"):  # the earlier whole-file JSON format
            try:
                ran = json.loads(text).get("ran", {})
                entries = [(str(k), float(v)) for k, v in ran.items()]
            except (ValueError, AttributeError, TypeError) as exc:
                log.warning("command ledger %s unreadable (%s); starting a new one", self.path, exc)
                return
        else:
            entries = []
            for line in text.splitlines():
                command_id, _, issued_text = line.partition(" ")
                try:
                    entries.append((command_id, float(issued_text)))
                except ValueError:
                    continue  # a torn last line after a crash
        for command_id, issued in sorted(entries, key=lambda e: e[1]):
            self._ran[command_id] = issued
            self._order.append((issued, command_id))
        self._journal_lines = len(entries)

    def has_run(self, command_id: str) -> bool:
        return command_id in self._ran

    def record(self, command_id: str, issued: float, now: float) -> None:
        """Record a command as run and save at once (before running it)."""
        self._ran[command_id] = issued
        self._order.append((issued, command_id))
        self._prune(now)
        if self._journal_lines > 2 * len(self._ran) + _COMPACT_SLACK:
            self._compact()
        else:
            self._append(command_id, issued)

    def __len__(self) -> int:
        return len(self._ran)

    def _prune(self, now: float) -> None:
        cutoff = now - 2 * self.lifetime()
        while self._order and self._order[0][0] < cutoff:
            issued, command_id = self._order.popleft()
            if self._ran.get(command_id) == issued:
                del self._ran[command_id]

    def _append(self, command_id: str, issued: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{command_id} {issued!r}\n")
            f.flush()
            os.fsync(f.fileno())
        self._journal_lines += 1

    def _compact(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(f"{command_id} {issued!r}\n" for command_id, issued in self._ran.items())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._journal_lines = len(self._ran)
