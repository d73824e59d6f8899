"""What an item's name says: its frame, state, failures and owner (ENGINEERING §1.3).

An item is a per-frame scene file (``shot.0001.vrscene``) or a task file
(``task.0001-0005.json``); its state is in its name (the names are listed in
envy/render/claims.py, which renames items from one state to the next). This
module only reads names: parsing, the listing of a folder sorted by state,
and who a claim belongs to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envy.share.names import is_junk

TAG = ".envy~"


@dataclass(frozen=True)
class Identity:
    """Who is claiming: host, process and per-start nonce."""

    host: str
    pid: int
    nonce: str


@dataclass(frozen=True)
class ItemName:
    """A parsed item name."""

    base: str  # "shot.0001"
    ext: str  # ".vrscene" as written in the name
    state: str  # pending | work | done | failed
    failures: int = 0
    host: str = ""
    pid: int = 0
    nonce: str = ""

    @property
    def key(self) -> str:
        """What identifies the item whatever its state (case-folded, as the share compares)."""
        return (self.base + self.ext).casefold()

    def name(self) -> str:
        if self.state == "pending" and not self.host:
            return f"{self.base}{self.ext}"
        if self.state == "pending":
            return f"{self.base}{TAG}retry~{self.failures}~{self.host}{self.ext}"
        if self.state == "work":
            return f"{self.base}{TAG}work~{self.failures}~{self.host}~{self.pid}~{self.nonce}{self.ext}"
        if self.state == "done":
            return f"{self.base}{TAG}done~{self.host}~{self.nonce}{self.ext}"
        return f"{self.base}{TAG}failed~{self.failures}~{self.host}~{self.nonce}{self.ext}"

    @property
    def original(self) -> str:
        return f"{self.base}{self.ext}"


class ItemPattern:
    """Recognises the items of one job folder by their extensions; everything else is ignored."""

    def __init__(self, extensions: Sequence[str]) -> None:
        exts = sorted({e.lower() for e in extensions}, key=len, reverse=True)
        alternatives = "|".join(re.escape(e) for e in exts)
        self._re = re.compile(rf"^(?P<base>.+?)(?:\.envy~(?P<tag>[^./\\]*))?(?P<ext>{alternatives})$", re.IGNORECASE)

    def parse(self, name: str) -> ItemName | None:
        if is_junk(name) or name.startswith("."):
            return None
        m = self._re.match(name)
        if not m or TAG in m["base"]:
            return None
        base, ext, tag = m["base"], m["ext"], m["tag"]
        if tag is None:
            return ItemName(base, ext, "pending")
        parts = tag.split("~")
        try:
            if parts[0] == "retry" and len(parts) == 3:
                return ItemName(base, ext, "pending", int(parts[1]), parts[2])
            if parts[0] == "work" and len(parts) == 5:
                return ItemName(base, ext, "work", int(parts[1]), parts[2], int(parts[3]), parts[4])
            if parts[0] == "done" and len(parts) == 3:
                return ItemName(base, ext, "done", 0, parts[1], 0, parts[2])
            if parts[0] == "failed" and len(parts) == 4:
                return ItemName(base, ext, "failed", int(parts[1]), parts[2], 0, parts[3])
        except ValueError:
            return None
        return None  # a tag we do not know: not ours to touch


@dataclass
class Claim:
    folder: Path
    item: ItemName  # in state "work", ours
    reclaimed_from: str | None = None  # the nonce of the dead owner we took it from

    @property
    def path(self) -> Path:
        return self.folder / self.item.name()


@dataclass
class Listing:
    """One listing of a job folder, sorted into states (a hint: §1.7)."""

    pending: list[ItemName] = field(default_factory=list)
    working: list[ItemName] = field(default_factory=list)
    done: list[ItemName] = field(default_factory=list)
    failed: list[ItemName] = field(default_factory=list)
    superseded: list[ItemName] = field(default_factory=list)  # older copies of a frame listed above

    def counts(self) -> dict[str, int]:
        return {
            "pending": len(self.pending),
            "running": len(self.working),
            "done": len(self.done),
            "failed": len(self.failed),
        }


# When one frame has several copies (a re-exported scene beside the renders of
# the old one), the frame is the copy of the first state here: one frame, one
# state, never counted twice (issue 11 §3). The others are "superseded".
# Claimed copies are never hidden (the reclaimer must see every one): two of
# them, a re-export claimed while the old scene still renders, both count as running.
_PRECEDENCE = {"work": 0, "pending": 1, "done": 2, "failed": 3}


def _fresh_first(item: ItemName) -> tuple[int, int]:
    # A scene under its own name (no host) is newer than any copy Envy renamed.
    return _PRECEDENCE[item.state], 0 if not item.host else 1


def sort_listing(names: Iterable[str], pattern: ItemPattern) -> Listing:
    listing = Listing()
    buckets = {"pending": listing.pending, "work": listing.working, "done": listing.done, "failed": listing.failed}
    chosen: dict[str, ItemName] = {}
    for name in names:
        item = pattern.parse(name)
        if item is None:
            continue
        if item.state == "work":
            listing.working.append(item)
            continue
        other = chosen.get(item.key)
        if other is None or _fresh_first(item) < _fresh_first(other):
            if other is not None:
                listing.superseded.append(other)
            chosen[item.key] = item
        else:
            listing.superseded.append(item)
    running = {i.key for i in listing.working}
    for item in chosen.values():
        if item.key in running:
            listing.superseded.append(item)
        else:
            buckets[item.state].append(item)
    listing.pending.sort(key=lambda i: i.key)
    return listing


def frame_number(base: str) -> int | None:
    m = re.search(r"(\d+)$", base)
    return int(m.group(1)) if m else None


def is_within(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True
