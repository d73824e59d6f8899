"""A mutex made of one file and renames, for the rare file more than one shell may write.

Only Envy IO writes the instruction file, but two students may run Envy IO on
two workstations at once; a plain read-modify-replace would lose one of two
commands sent at the same moment. The lock folder holds exactly one file:
``free`` or ``held~<host>~<pid>~<nonce>``. Taking the lock is a rename of
``free`` to our held name (only one rename of a source can win, ENGINEERING
§1.3); releasing renames it back. A holder that died is broken after its held
name has sat unchanged for ``stale_after`` seconds on our own monotonic clock,
by renaming the held name to ours: again a race only one may win (§1.6).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from envy.share.atomic import rename_attempt
from envy.share.fs import ShareFS

log = logging.getLogger(__name__)

FREE = "free"
HELD_PREFIX = "held~"


class LockTimeout(TimeoutError):
    pass


class RenameLock:
    def __init__(
        self,
        folder: Path,
        owner: str,
        fs: ShareFS,
        stale_after: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self.held_name = f"{HELD_PREFIX}{owner}"
        self.fs = fs
        self.stale_after = stale_after
        self.clock = clock

    def ensure(self) -> None:
        """Create the lock folder with its ``free`` file if it has neither (first use)."""
        self.fs.makedirs(self.folder)
        if not self._names():
            try:
                self.fs.write_new(self.folder / FREE, b"")
            except FileExistsError:
                pass

    def _names(self) -> list[str]:
        return [n for n in self.fs.listdir(self.folder) if n == FREE or n.startswith(HELD_PREFIX)]

    def acquire(self, timeout: float = 30.0) -> None:
        self.ensure()
        deadline = self.clock() + timeout
        seen_held: dict[str, float] = {}
        mine = self.folder / self.held_name
        while True:
            names = self._names()
            if FREE in names and rename_attempt(self.folder / FREE, mine, self.fs):
                self._settle_duplicates()
                return
            now = self.clock()
            for name in names:
                if name.startswith(HELD_PREFIX) and name != self.held_name:
                    first = seen_held.setdefault(name, now)
                    if now - first > self.stale_after and rename_attempt(self.folder / name, mine, self.fs):
                        log.warning("broke a stale lock %s held by %s", self.folder, name[len(HELD_PREFIX):])
                        self._settle_duplicates()
                        return
            if not names:
                self.ensure()
            if now > deadline:
                holders = ", ".join(n[len(HELD_PREFIX):] for n in names if n.startswith(HELD_PREFIX)) or "nobody"
                raise LockTimeout(f"{self.folder}: could not take the lock within {timeout:g} s (held by {holders})")
            time.sleep(0.05 + random.random() * 0.1)

    def _settle_duplicates(self) -> None:
        # Two first users can each create ``free`` before seeing the other's;
        # then two held names exist. The larger name gives way.
        others = [n for n in self._names() if n.startswith(HELD_PREFIX) and n != self.held_name]
        if any(n < self.held_name for n in others):
            self.fs.unlink(self.folder / self.held_name)
            raise LockTimeout(f"{self.folder}: lost a first-use race; try again")

    def release(self) -> None:
        mine = self.folder / self.held_name
        if not rename_attempt(mine, self.folder / FREE, self.fs):
            log.warning("lock %s was no longer ours when releasing (broken as stale?)", self.folder)

    @contextmanager
    def held(self, timeout: float = 30.0) -> Iterator[None]:
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()


def owner_id(host: str, nonce: str) -> str:
    return f"{host.lower()}~{os.getpid()}~{nonce}"
