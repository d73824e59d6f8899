"""Notifications not sent yet, kept in the agent's local folder so a quit or restart loses none.

The agent that wins a job's event marker is the only one that will ever tell
it (envy/notify/events.py), so an event still queued when that agent stops
(a student signs out, the agent restarts for a new version) would be lost.
The outbox writes what it still has to send here, per event the channels
left; the next start of the agent on this machine sends them. A channel is
crossed off once it is sent or given up on, so a restart repeats at most the
one delivery that was in flight. Events older than MAX_AGE_S are dropped
(logged): a day-old "your job is complete" helps nobody.

A local file (never the share): the ledger's folder (envy/platform/dirs.py).
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from envy.notify.events import JobEvent
from envy.platform.files import replace_with_retry

log = logging.getLogger(__name__)

PENDING_FILE = "notifications-pending.json"
MAX_AGE_S = 24 * 3600
MAX_EVENTS = 1000
CHANNELS = ("webhook", "email")


@dataclass
class PendingEvent:
    event: JobEvent
    channels: list[str]  # those still to send (CHANNELS order)


class PendingStore:
    """The file of pending events; written whole (temp, then replace) at every change."""

    def __init__(self, folder: Path | None) -> None:
        self.path = folder / PENDING_FILE if folder is not None else None

    def load(self, now: float | None = None) -> list[PendingEvent]:
        if self.path is None:
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("notify: cannot read %s (%s); notifications from before this start are lost", self.path, exc)
            return []
        found: list[PendingEvent] = []
        for entry in data[:MAX_EVENTS] if isinstance(data, list) else []:
            try:
                event = JobEvent.from_json(entry.get("event"))
                channels = [c for c in CHANNELS if c in entry.get("channels", [])]
            except (AttributeError, TypeError, ValueError) as exc:
                log.warning("notify: skipping a pending notification in %s: %s", self.path, exc)
                continue
            if _age_s(event, now) > MAX_AGE_S:
                log.warning("notify: dropping the notification of job %s: it finished more than a day ago",
                            event.name)
                continue
            found.append(PendingEvent(event, channels))
        return found

    def save(self, pending: list[PendingEvent]) -> None:
        if self.path is None:
            return
        data = json.dumps([{"event": p.event.to_json(), "channels": p.channels} for p in pending[:MAX_EVENTS]])
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(data, encoding="utf-8")
            replace_with_retry(str(tmp), str(self.path))
        except OSError as exc:
            log.warning("notify: cannot keep the pending notifications in %s: %s", self.path, exc)


def _age_s(event: JobEvent, now: float | None) -> float:
    try:
        at = calendar.timegm(time.strptime(event.at, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return 0.0  # no readable time: send it rather than drop it
    return (time.time() if now is None else now) - at
