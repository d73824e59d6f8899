"""A set with a size cap: what an agent remembers per command or per message (Must-hold 8).

"Report this once" and similar memories grow with every distinct line a share
writer can invent; 10,000 commands must not cost 10,000 entries for ever. The
oldest entries are forgotten first (at worst a very old warning is logged
once more).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class BoundedSeen:
    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._items: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, item: Hashable) -> bool:
        """Remember ``item``; True when it is new (was not remembered)."""
        if item in self._items:
            self._items.move_to_end(item)
            return False
        self._items[item] = None
        if len(self._items) > self.limit:
            self._items.popitem(last=False)
        return True

    def __contains__(self, item: Hashable) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)
