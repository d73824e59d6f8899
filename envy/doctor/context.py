"""What every check is handed: the share, the probe folder, and the optional second mount."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.names import temp_name_for


@dataclass
class DoctorContext:
    layout: ShareLayout
    fs: ShareFS
    probe: Path  # a folder of ours inside the share, removed at the end
    second_mount: Path | None = None  # the same share mounted a second time
    visibility_wait: float = 30.0  # longest we wait for the second mount to see a change
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    notes: dict[str, object] = field(default_factory=dict)  # facts one check leaves for a later one

    @property
    def second_probe(self) -> Path | None:
        """The probe folder as the second mount sees it."""
        if self.second_mount is None:
            return None
        return self.second_mount / self.probe.relative_to(self.layout.root)


@contextmanager
def probe_folder(share: Path) -> Iterator[Path]:
    """A fresh folder named like an Envy temp file (agents and listings ignore it), always removed.

    Created directly in the Envy folder so renames and clocks are measured on
    the same file server as instructions.txt.
    """
    probe = share / temp_name_for("doctor")
    probe.mkdir()
    try:
        yield probe
    finally:
        shutil.rmtree(probe, ignore_errors=True)
        if probe.exists():  # a file held open (Windows) or a server that lags: try once more
            time.sleep(0.5)
            shutil.rmtree(probe, ignore_errors=True)
