"""The agent's local file of notifications still to send (envy/notify/pending.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from envy.notify.events import new_event
from envy.notify.pending import PENDING_FILE, PendingEvent, PendingStore


def _event(name: str = "shot010"):  # type: ignore[no-untyped-def]
    return new_event("20261201-120000-shot010-abcd", name, "ana", "LAB3-07", "complete", 4, 0, "lab1-01", 11, "n0nce")


def test_what_is_saved_is_loaded_with_the_channels_left(tmp_path: Path) -> None:
    store = PendingStore(tmp_path)
    store.save([PendingEvent(_event(), ["email"])])
    (loaded,) = PendingStore(tmp_path).load()
    assert (loaded.event.job, loaded.event.name, loaded.event.done) == ("20261201-120000-shot010-abcd", "shot010", 4)
    assert loaded.channels == ["email"]
    store.save([])
    assert PendingStore(tmp_path).load() == []


def test_a_day_old_event_is_dropped_and_a_broken_file_or_entry_loses_only_itself(tmp_path: Path) -> None:
    store = PendingStore(tmp_path)
    store.save([PendingEvent(_event("old"), ["webhook"]), PendingEvent(_event("new"), ["webhook", "bogus"])])
    data = json.loads((tmp_path / PENDING_FILE).read_text())
    data[0]["event"]["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2 * 86400))
    data.append({"event": {"job": 5}, "channels": ["webhook"]})
    data.append("junk")
    (tmp_path / PENDING_FILE).write_text(json.dumps(data))
    (left,) = store.load()
    assert left.event.name == "new" and left.channels == ["webhook"]
    (tmp_path / PENDING_FILE).write_text("{not json")
    assert store.load() == []


def test_no_folder_keeps_nothing() -> None:
    store = PendingStore(None)
    store.save([PendingEvent(_event(), ["webhook"])])
    assert store.load() == []
