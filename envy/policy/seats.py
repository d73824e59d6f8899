"""Seats: how many machines a user's agents occupy, claimed atomically on the share.

::

    <share>/seats/<user>/seat.1    {"host": "lab3-03", "pid": 4211, "nonce": "9f2c01ab", ...}
    <share>/seats/<user>/seat.2

An agent may work only while it holds a seat numbered within the user's
limit. A seat is claimed by creating its file with O_CREAT|O_EXCL: the file
server decides, so of two agents starting at the same moment only one gets
seat 1 (the other's create fails with FileExistsError). The file holds the
owner's identity (host, pid, per-start nonce); nobody but the owner and a
reclaimer ever touches it.

Seat numbers record the order of arrival without comparing anybody's clock:
each agent takes the lowest free number, so when the limit drops, the agents
holding the numbers above it -- the last to arrive -- give theirs up.

The seat of an agent that is gone is freed by a take-over: rename it to a
name carrying our identity (only one of several reclaimers can win that
rename), check that it still holds what we judged dead, then remove it. If a
live agent re-claimed the number meanwhile, its seat is put back.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envy.platform.strict_modes import chain_problem
from envy.protocol.liveness import LivenessTracker
from envy.protocol.status import AgentStatus, read_status
from envy.share.atomic import rename_attempt
from envy.share.bounded import ShareFileError, read_share_file
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

log = logging.getLogger(__name__)

SEATS_FOLDER = "seats"
_SEAT_RE = re.compile(r"^seat\.([1-9]\d{0,5})$")
TAKE_TAG = ".envy~take~"
# With no limit the listing may be stale: try this many numbers past the highest one listed.
_EXTRA_TRIES = 8


@dataclass(frozen=True)
class SeatOwner:
    host: str  # lower case, as in status file names
    pid: int
    nonce: str

    def to_bytes(self, user: str) -> bytes:
        info = {"host": self.host, "pid": self.pid, "nonce": self.nonce, "user": user,
                "claimed": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # for people reading the file only
        return (json.dumps(info) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> SeatOwner | None:
        try:
            data = json.loads(raw.decode("utf-8"))
            return cls(str(data["host"]).lower(), int(data["pid"]), str(data["nonce"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # empty (being written, or its writer died) or not ours


@dataclass(frozen=True)
class Seat:
    number: int
    raw: bytes  # the file's content when we read it: a take-over checks it is unchanged
    owner: SeatOwner | None  # None: empty or unreadable


def seat_folder(layout: ShareLayout, user: str) -> Path:
    """``<share>/seats/<user>``, the name case-folded (SMB and Windows user names ignore case)."""
    safe = re.sub(r"[^a-z0-9._-]", "_", user.casefold())
    return layout.root / SEATS_FOLDER / (safe if safe.strip(".") else f"_{safe}")


class OwnerWatch:
    """Is a seat's owner gone? Judged from status files, on our own monotonic clock (ENGINEERING §1.5).

    Gone means one of:

    * the owner's status file shows its nonce and the counter has not changed
      for ``dead_after`` seconds since we started watching;
    * for ``dead_after`` seconds we have not seen the owner's nonce in its
      host's status file at all (no file, another run's nonce, an unreadable
      seat). A starting agent claims its seat before its first heartbeat, so
      a mismatch alone proves nothing; a missing nonce for that long does;
    * the owner is an earlier run of this very host (one agent per host per
      machine: envy/agent/single.py), e.g. after a kill -9 and a restart.
    """

    def __init__(self, layout: ShareLayout, fs: ShareFS, me: SeatOwner, dead_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.layout = layout
        self.fs = fs
        self.me = me
        self.dead_after = dead_after
        self.clock = clock
        self.tracker = LivenessTracker(dead_after, clock, for_takeover=True)
        self._statuses: dict[str, AgentStatus | None] = {}
        self._unreadable: set[str] = set()  # hosts whose status file failed to read this time: no verdict
        self._unmatched_since: dict[tuple[int, bytes], float] = {}

    def observe(self, seats: list[Seat]) -> None:
        """Read the status file of each seat owner's host (a few small files, not the whole folder)."""
        hosts = {s.owner.host for s in seats if s.owner is not None and s.owner.host != self.me.host}
        self._statuses, self._unreadable = {}, set()
        for host in sorted(hosts):
            try:
                status: AgentStatus | None = read_status(self.layout, host, self.fs)
            except FileNotFoundError:
                status = None
            except ValueError:
                status = None  # corrupt or foreign: the owner's nonce is not in it
            except OSError:
                self._unreadable.add(host)  # the share failing is not the owner dying
                continue
            if status is not None:
                self.tracker.observe(host, status.nonce, status.counter)
            self._statuses[host] = status
        current = {(s.number, s.raw) for s in seats}
        self._unmatched_since = {k: v for k, v in self._unmatched_since.items() if k in current}

    def gone(self, seat: Seat) -> bool:
        owner = seat.owner
        if owner is not None and owner.host == self.me.host:
            return owner != self.me
        if owner is not None and owner.host in self._unreadable:
            return False
        status = self._statuses.get(owner.host) if owner is not None else None
        if owner is not None and status is not None and status.nonce == owner.nonce:
            self._unmatched_since.pop((seat.number, seat.raw), None)
            return not self.tracker.is_alive(owner.host)
        first = self._unmatched_since.setdefault((seat.number, seat.raw), self.clock())
        return self.clock() - first >= self.dead_after


class Seats:
    """One agent's view of its user's seats: claim the lowest free one, keep it, give it up."""

    def __init__(self, layout: ShareLayout, user: str, me: SeatOwner, fs: ShareFS,
                 dead_after: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.layout = layout
        self.user = user
        self.me = me
        self.fs = fs
        self.folder = seat_folder(layout, user)
        self.held: int | None = None
        self.watch = OwnerWatch(layout, fs, me, dead_after, clock)
        self._warned: set[str] = set()  # seat names already reported as refused (bounded)

    def path(self, number: int) -> Path:
        return self.folder / f"seat.{number}"

    def scan(self) -> list[Seat]:
        """The seats in the folder (a listing is a hint; the create decides)."""
        try:
            names = self.fs.listdir(self.folder)
        except FileNotFoundError:
            return []
        seats: list[Seat] = []
        for name in names:
            m = _SEAT_RE.match(name)
            if not m:
                continue  # junk, temp and take-over names are not seats
            try:
                raw = self._read(self.folder / name)
            except FileNotFoundError:
                continue  # freed between listing and reading
            seats.append(Seat(int(m[1]), raw, SeatOwner.from_bytes(raw)))
        return sorted(seats, key=lambda s: s.number)

    def _read(self, path: Path) -> bytes:
        """A seat file's bytes; a refused one (a FIFO, a huge file) reads as empty, so it is
        judged like a seat whose writer died: freed by a take-over after ``dead_after``."""
        try:
            return read_share_file(self.fs, path, "seat")
        except ShareFileError as exc:
            if path.name not in self._warned and len(self._warned) < 1000:
                self._warned.add(path.name)
                log.warning("seat file skipped: %s", exc)
            return b""

    def ensure_folder(self) -> None:
        """Create ``seats/<user>`` when missing, but never under an unmounted share (§1.8).

        A folder someone else made (``mkdir seats/<user>`` squats that user's
        seats: its owner can fill it or empty it) is refused: PermissionError
        naming the folder and its owner, which the policy shows as the reason
        this agent cannot work (Must-hold 10).
        """
        if not self.fs.exists(self.folder):
            self.layout.require(self.fs)
            self.fs.makedirs(self.folder)
        problem = chain_problem(self.folder, self.folder.parent, what="seat folder")
        if problem is not None:
            raise PermissionError(f"{problem}; ask the lab's admin to remove it")

    def claim(self, limit: int | None, seats: list[Seat]) -> int | None:
        """Take the lowest free seat within ``limit`` (None: no limit); its number, or None if all are taken."""
        taken = {s.number for s in seats}
        top = limit if limit is not None else max(taken, default=0) + _EXTRA_TRIES
        for number in range(1, top + 1):
            if number in taken:
                continue
            try:
                self.fs.write_new(self.path(number), self.me.to_bytes(self.user))
            except FileExistsError:
                continue  # someone was first: the server said so
            self.held = number
            return number
        return None

    def adopt(self, seats: list[Seat], limit: int | None) -> int | None:
        """Take back a seat of ours we lost track of (the share was away); give up any extra ones."""
        mine = [s.number for s in seats if s.owner == self.me]
        keep = next((n for n in mine if limit is None or n <= limit), None)
        for number in mine:
            if number != keep:
                self.take_over(next(s for s in seats if s.number == number))
        self.held = keep
        return keep

    def still_mine(self) -> bool:
        """Is our seat file still there and ours? False after a take-over (we were silent too long)."""
        if self.held is None:
            return False
        try:
            raw = self._read(self.path(self.held))
        except FileNotFoundError:
            return False
        return SeatOwner.from_bytes(raw) == self.me

    def release(self) -> None:
        """Give our seat up (on quit, or when it is above a lower limit)."""
        number, self.held = self.held, None
        if number is None:
            return
        try:
            raw = self._read(self.path(number))
        except FileNotFoundError:
            return
        if SeatOwner.from_bytes(raw) == self.me:
            self.take_over(Seat(number, raw, self.me))

    def free_gone(self, seats: list[Seat], only_mine: bool = False) -> list[int]:
        """Free the seats whose owners are gone (``only_mine``: only earlier runs of this host)."""
        if not only_mine:
            self.watch.observe(seats)
        freed = []
        for seat in seats:
            if seat.number == self.held:
                continue
            if only_mine and (seat.owner is None or seat.owner.host != self.me.host or seat.owner == self.me):
                continue
            if self.watch.gone(seat) and self.take_over(seat):
                who = f"{seat.owner.host} (nonce {seat.owner.nonce})" if seat.owner else "an unknown owner"
                log.info("freed seat %d of %s: that agent is gone", seat.number, who)
                freed.append(seat.number)
        return freed

    def take_over(self, seat: Seat) -> bool:
        """Rename the seat to our own name, verify it still holds ``seat.raw``, remove it. True if freed."""
        src = self.path(seat.number)
        mine = self.folder / f"seat.{seat.number}{TAKE_TAG}{self.me.host}~{self.me.pid}~{self.me.nonce}"
        if not rename_attempt(src, mine, self.fs):
            return False  # another reclaimer won, or the owner released it
        try:
            raw = self._read(mine)
        except OSError:
            raw = None
        if raw == seat.raw:
            self._remove(mine)
            return True
        # A live agent claimed the number again between our look and our rename: give it back.
        try:
            self.fs.rename_no_replace(mine, src)
            log.info("seat %d was claimed again meanwhile; left it to its new owner", seat.number)
        except FileExistsError:
            # Claimed yet again: that owner keeps it; the one we moved finds out at its next check.
            self._remove(mine)
        return False

    def _remove(self, path: Path) -> None:
        try:
            self.fs.unlink(path)
        except FileNotFoundError:
            pass

