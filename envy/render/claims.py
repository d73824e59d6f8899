"""Claiming work items by renaming them in place (ENGINEERING §1.3 to §1.7).

An item is a per-frame scene file (``shot.0001.vrscene``) or a task file
(``task.0001-0005.json``). Its state is in its name, which keeps the folder and
the extension so relative ``#include``s and texture paths keep working::

    shot.0001.vrscene                                 pending (fresh)
    shot.0001.envy~retry~1~lab3-02.vrscene            pending again after 1 failure, last on lab3-02
    shot.0001.envy~work~0~lab3-03~4211~9f2c01ab.vrscene   claimed: failures so far, host, pid, nonce
    shot.0001.envy~done~lab3-03~9f2c01ab.vrscene      completed (kept, never deleted)
    shot.0001.envy~failed~3~lab3-03~9f2c01ab.vrscene  failed after the retry limit (kept)

Every transition is one rename to a name nobody else would choose (it carries
our host, pid and per-start nonce), so only one claimer can win and nothing is
ever renamed onto an existing name.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

# The names themselves live in items.py; these are re-exported, as most callers know them from here.
from envy.render.items import (
    TAG,
    Claim,
    Identity,
    ItemName,
    ItemPattern,
    Listing,
    frame_number,
    is_within,
    sort_listing,
)
from envy.share.atomic import rename_attempt
from envy.share.fs import ShareFS

__all__ = [
    "DONE", "LOST", "MINE", "TAG", "UNKNOWN", "Claim", "FolderQueue", "Identity", "ItemName", "ItemPattern",
    "Listing", "frame_number", "is_within", "new_token", "reset_items", "sort_listing",
]

log = logging.getLogger(__name__)

# Answers of FolderQueue.ownership() and complete().
MINE, LOST, UNKNOWN, DONE = "mine", "lost", "unknown", "done"

# How many of the first pending items a claimer picks from at random: frames
# still go roughly in order, but competing agents rarely try the same one.
PICK_WINDOW = 8
# After this many failed renames in a row (others have been here), jump to a
# random point of the untried names; after this many jumps without a win, list again.
STALE_AFTER = 8
JUMPS_BEFORE_LISTING = 3


class FolderQueue:
    """The claimable items of one folder, for one claimer.

    The folder is listed once and the pending names are tried from that cached
    list: a failed rename only means someone else was first. So the cost of a
    claim does not grow with the number of files; a new listing is made only
    when the cached candidates run out.
    """

    def __init__(self, folder: Path, pattern: ItemPattern, me: Identity, fs: ShareFS) -> None:
        self.folder = folder
        self.pattern = pattern
        self.me = me
        self.fs = fs
        self._candidates: list[ItemName] = []
        self._lock = threading.Lock()  # the workers of one agent share a queue
        self._held: set[str] = set()  # keys of the items this claimer holds now

    def refresh(self) -> None:
        """List the folder again and start this claimer's walk at a random point of it.

        Claimers that all started at the head of one sorted listing would all
        try the same few names, and a walk through a stale listing would be as
        long as the folder; starting at random keeps competing agents apart.
        Only names that can be pending are parsed: in a busy folder most are done.
        """
        listed = self.fs.listdir(self.folder)
        names = [n for n in listed if TAG not in n or f"{TAG}retry~" in n]
        pending = sorted((i for i in map(self.pattern.parse, names) if i is not None and i.state == "pending"),
                         key=lambda i: i.key)
        k = random.randrange(len(pending)) if pending else 0
        self._candidates = pending[k:] + pending[:k]
        self._pos = 0
        self._replaced = _older_copies(listed, pending, self.pattern)

    def _jump(self) -> None:
        """Move the walk to a random point of the names not tried yet (none is dropped)."""
        c, p = self._candidates, self._pos
        if len(c) - p > 1:
            k = random.randrange(len(c) - p)
            c[p:] = c[p + k:] + c[p:p + k]

    _pos = 0
    _replaced: dict[str, list[ItemName]] = {}  # noqa: RUF012 - replaced whole by refresh(), never mutated in place

    def _pick(self, avoid: Callable[[ItemName], bool] | None) -> ItemName | None:
        """Take one of the first PICK_WINDOW untried candidates (O(window), not O(files))."""
        c = self._candidates
        window: list[int] = []
        i = self._pos
        while i < len(c) and len(window) < PICK_WINDOW:
            if avoid is None or not avoid(c[i]):
                window.append(i)
            i += 1
        if not window:
            return None
        j = random.choice(window)
        c[j], c[self._pos] = c[self._pos], c[j]
        self._pos += 1
        return c[self._pos - 1]

    def untried(self) -> int:
        """How many names of the last listing this claimer has not tried yet (others may have taken them)."""
        with self._lock:
            return len(self._candidates) - self._pos

    def claim_next(self, avoid: Callable[[ItemName], bool] | None = None) -> Claim | None:
        """Claim one pending item, or None when there is none left to claim.

        ``avoid``: items to leave for others for now (a retry should go to a
        different host when there is one).
        """
        refreshed = False
        misses = jumps = 0
        while True:
            with self._lock:
                if misses >= STALE_AFTER and jumps < JUMPS_BEFORE_LISTING:
                    self._jump()  # others have been here: try elsewhere
                    jumps, misses = jumps + 1, 0
                item = self._pick(avoid)
                if item is None or misses >= STALE_AFTER:
                    if item is None and refreshed:
                        return None
                    self.refresh()  # the listing is stale: list again
                    refreshed, misses, jumps = True, 0, 0
                    continue
            claim = self.try_claim(item)
            if claim is not None:
                return claim
            misses += 1

    def try_claim(self, item: ItemName) -> Claim | None:
        if item.key in self._held:
            # A stale listing still shows an item we already hold as pending; its
            # rename would fail and find our own claim name, which is no new win.
            return None
        mine = ItemName(item.base, item.ext, "work", item.failures, self.me.host, self.me.pid, self.me.nonce)
        if rename_attempt(self.folder / item.name(), self.folder / mine.name(), self.fs):
            claim = self._hold(Claim(self.folder, mine))
            if not item.host:
                self._retire_older_copies(item)
            return claim
        return None

    def _retire_older_copies(self, fresh: ItemName) -> None:
        """A re-exported scene replaces its frame: rename the old copies out of the item namespace.

        They are kept (``base.envy~replaced~host~token.ext``, a tag no reader
        counts), so ``reset`` can never bring a broken copy back beside the
        fix. A rename that fails means someone else moved that copy first.
        """
        with self._lock:
            older = self._replaced.pop(fresh.key, [])
        for old in older:
            retired = f"{old.base}{TAG}replaced~{self.me.host}~{new_token()}{old.ext}"
            if rename_attempt(self.folder / old.name(), self.folder / retired, self.fs):
                log.info("%s was re-exported: the older copy %s is now %s", fresh.original, old.name(), retired)

    def _hold(self, claim: Claim) -> Claim:
        with self._lock:
            self._held.add(claim.item.key)
        return claim

    def _let_go(self, claim: Claim) -> None:
        with self._lock:
            self._held.discard(claim.item.key)

    def reclaim(self, stale: ItemName) -> Claim | None:
        """Take over an item claimed by a dead (or restarted) owner: a race only one may win (§1.6)."""
        mine = ItemName(stale.base, stale.ext, "work", stale.failures, self.me.host, self.me.pid, self.me.nonce)
        if stale.key in self._held:
            return None  # we hold this item already: never "reclaim" it from ourselves
        if rename_attempt(self.folder / stale.name(), self.folder / mine.name(), self.fs):
            log.warning("reclaimed %s from %s (nonce %s)", stale.original, stale.host, stale.nonce)
            return self._hold(Claim(self.folder, mine, reclaimed_from=stale.nonce))
        return None

    def ownership(self, claim: Claim) -> str:
        """``mine``, ``lost`` (taken over), or ``unknown`` (the share cannot tell us now).

        Only a missing claim name in a folder we can still see means another
        agent took it; a share that is gone or failing proves nothing (§1.7, §1.8).
        """
        try:
            self.fs.stat(claim.path)
            return MINE
        except FileNotFoundError:
            pass
        except OSError:
            return UNKNOWN
        try:
            self.fs.stat(self.folder)
        except OSError:
            return UNKNOWN
        return LOST

    def still_mine(self, claim: Claim) -> bool:
        """Ownership check before completing (§1.4): is our claimed name still there?"""
        return self.ownership(claim) == MINE

    def complete(self, claim: Claim) -> bool:
        """Mark the item completed; False if it was taken over or the share could not be reached."""
        return self.finish(claim) == DONE

    def finish(self, claim: Claim, owned: bool = False) -> str:
        """Mark the item completed: ``done``, ``lost`` (taken over meanwhile) or ``unknown`` (try again later).

        ``owned``: the caller saw the claim still ours a moment ago (§1.4) and did nothing since,
        so it is not asked again; the rename of our own claim name decides either way."""
        state = MINE if owned else self.ownership(claim)
        if state != MINE:
            if state == LOST:
                self._let_go(claim)
            return state
        done = ItemName(claim.item.base, claim.item.ext, "done", 0, self.me.host, 0, self.me.nonce)
        if rename_attempt(claim.path, self.folder / done.name(), self.fs):
            self._let_go(claim)
            return DONE
        state = self.ownership(claim)
        if state == LOST:
            self._let_go(claim)
        return UNKNOWN if state == MINE else state

    def fail(self, claim: Claim, max_retries: int) -> str | None:
        """Count a failure: back to pending for a retry, or failed after the limit.

        Returns the new state (``pending`` or ``failed``), ``unknown`` when the
        share cannot be reached now (try again), or None when the claim was lost.
        """
        failures = claim.item.failures + 1
        if failures > max_retries:
            new = ItemName(claim.item.base, claim.item.ext, "failed", failures, self.me.host, 0, self.me.nonce)
        else:
            new = ItemName(claim.item.base, claim.item.ext, "pending", failures, self.me.host)
        return self._move_mine(claim, new)

    def give_back(self, claim: Claim) -> str | None:
        """An item not started (the share went away while planning it): pending again, no failure
        counted. Answers like fail(): ``pending``, ``unknown`` (try again) or None (lost)."""
        item = claim.item
        return self._move_mine(claim, ItemName(item.base, item.ext, "pending", item.failures,
                                               self.me.host if item.failures else ""))

    def _move_mine(self, claim: Claim, new: ItemName) -> str | None:
        if self.ownership(claim) == MINE and rename_attempt(claim.path, self.folder / new.name(), self.fs):
            self._let_go(claim)
            return new.state
        if self.ownership(claim) == LOST:
            self._let_go(claim)
            return None
        return UNKNOWN

    def forget(self, claim: Claim) -> None:
        """The worker is done with this claim, whatever became of it."""
        self._let_go(claim)

    def release(self, claim: Claim) -> bool:
        """Give an unfinished item back (stop()): pending again, failure count unchanged."""
        item = claim.item
        new = ItemName(item.base, item.ext, "pending", item.failures, item.host if item.failures else "")
        if item.failures:
            new = ItemName(item.base, item.ext, "pending", item.failures, self.me.host)
        target = self.folder / new.name()
        self._let_go(claim)
        try:
            self.fs.rename_no_replace(claim.path, target)
            return True
        except FileExistsError:
            # Someone re-exported the frame meanwhile: keep theirs, ours becomes a retry name.
            alt = ItemName(item.base, item.ext, "pending", item.failures, self.me.host)
            return rename_attempt(claim.path, self.folder / alt.name(), self.fs)
        except OSError:
            return False


def _older_copies(names: Iterable[str], pending: Sequence[ItemName], pattern: ItemPattern) -> dict[str, list[ItemName]]:
    """Per fresh pending item (a scene under its own name), the other copies of the same frame.

    Only names whose base matches a fresh item are parsed: in a busy folder
    most names are done frames with no re-export.
    """
    fresh = {i.base.casefold(): i.key for i in pending if not i.host}
    found: dict[str, list[ItemName]] = {}
    if not fresh:
        return found
    for name in names:
        base = name.split(TAG, 1)[0].casefold() if TAG in name else None
        if base is None or base not in fresh:
            continue
        item = pattern.parse(name)
        if item is not None and item.key == fresh[base] and item.state != "work" and item.host:
            found.setdefault(item.key, []).append(item)
    return found


def new_token() -> str:
    return "%08x" % random.getrandbits(32)


def reset_items(folder: Path, pattern: ItemPattern, states: Sequence[str], fs: ShareFS,
                only: Callable[[ItemName], bool] | None = None) -> int:
    """Bring done/failed items back to pending under their original names (Envy IO's ``reset``).

    ``only``: reset just the items it accepts (selected frames). Only the copy
    that stands for its frame is reset: a frame re-exported meanwhile is
    already pending, and its older copies stay where they are.
    """
    count = 0
    listing = sort_listing(fs.listdir(folder), pattern)
    retries = [i for i in listing.pending if i.host]  # "pending" in states: retry names too (deleting a job)
    for item in [*listing.done, *listing.failed, *retries]:
        name = item.name()
        if item.state not in states or (only is not None and not only(item)):
            continue
        try:
            fs.rename_no_replace(folder / name, folder / item.original)
            count += 1
        except FileExistsError:
            log.warning("reset: %s already exists (re-exported?); left %s as it is", item.original, name)
        except FileNotFoundError:
            continue
    return count
