"""Early wake-up of the polling loop from native filesystem events, where they work.

inotify, FSEvents and ReadDirectoryChangesW only see changes made on this
machine (ENGINEERING §1.10), so they are never the source of truth: the
jittered poll is. On a local share (the demo, tests, a workstation that is
also the file server) an event simply wakes the poll early.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

# File systems whose change notifications come from this kernel only; on these
# an event is reliable for writes made on this machine.
_LOCAL_FS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "apfs", "hfs", "ntfs", "refs", "zfs", "overlay", "f2fs"}


# watchdog event types that mean the file changed (not "opened" or "closed_no_write").
CHANGE_EVENTS = frozenset({"created", "modified", "moved", "deleted", "closed"})


def wakes_the_poll(event: object) -> bool:
    """A change of instructions.txt. Only changes: the poll itself opens and reads the
    file (a fresh read), and its own "opened" and "closed without writing" events
    must not wake it again, or it polls in a loop (seen as 400 polls a minute)."""
    if getattr(event, "event_type", None) not in CHANGE_EVENTS:
        return False
    paths = (str(getattr(event, "src_path", "")), str(getattr(event, "dest_path", "")))
    return any(p.endswith("instructions.txt") for p in paths)


def is_local_folder(path: Path) -> bool:
    """True when ``path`` sits on a local file system (not NFS, SMB or FUSE)."""
    try:
        target = str(path.resolve())
        best = None
        for part in psutil.disk_partitions(all=True):
            mount = part.mountpoint
            if target == mount or target.startswith(mount.rstrip("/\\") + ("/" if "/" in target else "\\")):
                if best is None or len(mount) > len(best.mountpoint):
                    best = part
        return best is not None and best.fstype.lower() in _LOCAL_FS
    except Exception:
        return False


class EarlyWakeup:
    def __init__(self, folder: Path, wake: threading.Event) -> None:
        self.folder = folder
        self.wake = wake
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        if not is_local_folder(self.folder):
            return
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer

            wake = self.wake

            class _Handler(FileSystemEventHandler):
                def on_any_event(self, event: FileSystemEvent) -> None:
                    try:
                        woken = wakes_the_poll(event)
                    except Exception:  # MemoryError: an extra poll is harmless, a dead observer thread is not
                        woken = True
                    if woken:
                        wake.set()

            observer = Observer()
            observer.schedule(_Handler(), str(self.folder), recursive=False)
            observer.daemon = True
            observer.start()
            self._observer = observer
        except Exception as exc:  # no native events here: polling alone is fine
            log.debug("no early wake-up for %s: %s", self.folder, exc)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None
