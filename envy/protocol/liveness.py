"""Who is alive: watch each agent's heartbeat counter change on our own monotonic clock.

Comparing a status file's mtime (or a time written inside it) with the
observer's clock is wrong on a lab network: clocks drift, shares cache
attributes for up to a minute and some keep 2 s timestamps (ENGINEERING §1.5).
Instead we remember when *we* last saw each agent's (nonce, counter) change.

A fresh observer has seen nothing change yet; it gives every agent a grace
period of ``dead_after`` from the first sighting before calling it dead.

A change is dated by what we know, not by when we happened to look: if the
counter moved between our previous look (at ``looked``) and this one, all we
know is that the agent beat at some moment after ``looked``. So the change is
dated ``looked``, the earliest it can have happened. An observer that looks
every second loses at most a second; one that looked 50 s ago (two runs of
``envy-io status``) does not take a beat from 50 s ago, by an agent killed
right after it, for "changed just now" (issue 14).
An observer that *takes over* what it calls dead (the reclaimer, the seat
keeper) does so only while its looks are regular (``for_takeover``): when its
previous look is more than ``TAKEOVER_REGULAR_LOOK`` x ``dead_after`` old (a busy
CPU or a slow share delayed its round, or in signed mode the files between were
a forger's), the change is dated when seen. Dated at that old look, a living
agent would seem silent for the whole gap and its frame would render twice.
With regular looks the earliest dating stays, so a killed agent's frame runs
again within ``dead_after`` plus one look.
A change that beats could not have made is *suspect* (issue 9 Must-hold 10):
a counter that goes back, one that moved further than the agent's heartbeat
allows since we saw it last change, or a nonce of an earlier run coming back.
That is somebody else writing the file (a forger, a replay of an old status).
A suspect change proves nothing: it is not counted as a beat, and for
``dead_after`` after it the host is neither proven alive nor taken for dead
(``is_suspect``); the reclaimer leaves its frames alone meanwhile.

A shell that runs one command and exits keeps its observations in a small
local file (``ObservationCache``) so the next run knows what it saw, as long
as the machine has not rebooted (monotonic clocks restart at boot).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sighting:
    nonce: str
    counter: int
    first_seen: float  # our monotonic clock, first time we saw this agent at all
    changed: float  # our monotonic clock: (nonce, counter) changed after this moment
    changes: int = 0  # how many changes we have seen; 0 means "not yet proven alive"
    looked: float | None = None  # our monotonic clock, last time we read this agent's status
    suspect_until: float = float("-inf")  # our monotonic clock: a suspect change was seen (module docstring)
    suspect_reason: str = ""
    earlier_nonces: tuple[str, ...] = ()  # this host's runs we saw before the current one, newest last

    def __post_init__(self) -> None:
        if self.looked is None:
            self.looked = self.changed


class LivenessTracker:
    def __init__(self, dead_after: float, clock: Callable[[], float] = time.monotonic, *,
                 for_takeover: bool = False) -> None:
        self.dead_after = dead_after
        self.clock = clock
        self.for_takeover = for_takeover  # a change after an irregular gap is dated when seen (module docstring)
        self.sightings: dict[str, Sighting] = {}

    def observe(self, host: str, nonce: str, counter: int, heartbeat: float | None = None) -> None:
        """One look at ``host``'s status; ``heartbeat`` is the interval it says it beats at (for
        the too-fast check; None: no such check)."""
        key = host.lower()
        now = self.clock()
        seen = self.sightings.get(key)
        if seen is None:
            self.sightings[key] = Sighting(nonce, counter, now, now, looked=now)
            return
        if seen.nonce != nonce or seen.counter != counter:
            suspect = _suspect_change(seen, nonce, counter, now, heartbeat)
            if suspect:
                # Not a beat: keep what we knew, so the agent's next real beat counts as usual.
                seen.suspect_until, seen.suspect_reason = now + self.dead_after, suspect
                seen.looked = now
                return
            if seen.nonce != nonce:
                seen.earlier_nonces = (*seen.earlier_nonces, seen.nonce)[-MAX_EARLIER_NONCES:]
            # It changed at some moment since our previous look: date it then (module docstring).
            previous = seen.looked if seen.looked is not None else now
            if self.for_takeover and now - previous > TAKEOVER_REGULAR_LOOK * self.dead_after:
                previous = now  # our own look came late: the gap says nothing about the agent
            seen.nonce, seen.counter, seen.changed = nonce, counter, min(previous, now)
            seen.changes += 1
        seen.looked = now

    def is_suspect(self, host: str) -> bool:
        """A change beats could not make was seen within ``dead_after``: neither alive nor dead."""
        seen = self.sightings.get(host.lower())
        return seen is not None and self.clock() < seen.suspect_until

    def suspect_reason(self, host: str) -> str:
        seen = self.sightings.get(host.lower())
        return seen.suspect_reason if seen is not None and self.is_suspect(host) else ""

    def silent_for(self, host: str) -> float | None:
        seen = self.sightings.get(host.lower())
        return None if seen is None else self.clock() - seen.changed

    def is_alive(self, host: str) -> bool:
        """False once we have watched ``dead_after`` seconds pass without a change."""
        silent = self.silent_for(host)
        return silent is not None and silent < self.dead_after

    def proven_alive(self, host: str) -> bool:
        """Alive and seen to change at least once (not only within the first-sighting grace), not suspect."""
        seen = self.sightings.get(host.lower())
        return seen is not None and seen.changes > 0 and self.is_alive(host) and not self.is_suspect(host)


# For an observer that takes over: a look at most this part of dead_after after the previous one is
# regular (the reclaimer looks every quarter at most); a change seen after a longer gap is dated when
# seen. So a living agent is called dead only after at least (1 - this) x dead_after of real silence.
TAKEOVER_REGULAR_LOOK = 0.3
# A host's earlier runs remembered, to tell a replayed old status from a restart.
MAX_EARLIER_NONCES = 8
# Beats an agent may seem to gain on its heartbeat: its first and last beats come early, and
# our clock's look and its writes are not in step.
BEAT_SLACK = 3


def _suspect_change(seen: Sighting, nonce: str, counter: int, now: float, heartbeat: float | None) -> str:
    """Why this change cannot be the agent's own beats ('' when it can)."""
    if nonce != seen.nonce:
        return "an earlier run's status came back (a replay)" if nonce in seen.earlier_nonces else ""
    if counter < seen.counter:
        return f"its counter went back from {seen.counter} to {counter}"
    if heartbeat is not None and heartbeat > 0:
        # Since the earliest moment its last change can have happened (``changed``), it beat at most
        # once per heartbeat, whatever a caching client showed us meanwhile.
        most = (now - seen.changed) / heartbeat + BEAT_SLACK
        if counter - seen.counter > most:
            return (f"its counter moved {counter - seen.counter} in {now - seen.changed:.1f} s, faster than "
                    f"its heartbeat of {heartbeat:g} s allows")
    return ""


def _boot_id() -> str:
    import psutil

    return str(int(psutil.boot_time()))


class ObservationCache:
    """Persist a tracker's sightings locally between runs of a one-shot command."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, tracker: LivenessTracker) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(data, dict) or data.get("boot") != _boot_id():
            return
        now = tracker.clock()
        for host, s in (data.get("sightings") or {}).items():
            try:
                sighting = Sighting(str(s["nonce"]), int(s["counter"]), float(s["first_seen"]), float(s["changed"]),
                                    int(s["changes"]), float(s.get("looked", s["changed"])))
            except (KeyError, TypeError, ValueError):
                continue
            if sighting.changed <= now and (sighting.looked or 0.0) <= now:
                tracker.sightings[host] = sighting

    def save(self, tracker: LivenessTracker) -> None:
        data = {
            "boot": _boot_id(),
            "sightings": {h: s.__dict__ for h, s in tracker.sightings.items()},
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache: losing it only costs a longer first look
