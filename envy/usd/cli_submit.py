"""``envy-io submit DIR --delegate X [--tiles 3x3]``: the command behind the CLI, on parsed values.

envy_io parses the command line and calls ``run_submit_usd``; bad input
raises ``JobError`` (one line; the CLI turns it into a usage error, exit 2),
and nothing is written then. Lines for the user go to ``say``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from envy.platform.host import os_name
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.usd.check import is_usd_name
from envy.usd.submit_usd import DEFAULT_DELEGATE, DEFAULT_TILE_SUFFIX, parse_tiles, submit_usd


def looks_like_usd_folder(folder: str | Path) -> bool:
    """Whether ``envy-io submit DIR`` should take the husk path: DIR holds USD files."""
    try:
        return any(is_usd_name(entry.name) for entry in Path(folder).iterdir())
    except OSError:
        return False


def run_submit_usd(
    share: ShareLayout | str | Path,
    folder: str,
    delegate: str | None = None,
    tiles: str | None = None,
    priority: int = 50,
    output: str | None = None,
    *,
    name: str | None = None,
    pattern: str | None = None,
    max_retries: int | None = None,
    remap: Sequence[str] = (),
    paused: bool = False,
    tile_suffix: str | None = None,
    extra_args: Sequence[str] = (),
    say: Callable[[str], None] = print,
    fs: ShareFS,
) -> int:
    layout = share if isinstance(share, ShareLayout) else ShareLayout(Path(share))
    job = submit_usd(
        layout, folder, delegate or DEFAULT_DELEGATE, parse_tiles(tiles) if tiles else None, priority, output,
        name=name, pattern=pattern, max_retries=max_retries, remap=remap, paused=paused,
        tile_suffix=tile_suffix or DEFAULT_TILE_SUFFIX, extra_args=extra_args, fs=fs, local_os=os_name(),
    )
    count = job.settings.get("frame_count", 0)
    tiled = job.settings.get("tiles")
    per = f", {tiled[0]}x{tiled[1]} tiles each" if tiled else ""
    say(f"submitted {job.id}: {count} frame{'s' if count != 1 else ''} ({job.frames}){per} "
        f"with {job.settings['delegate']} -> {job.output}{' (paused)' if paused else ''}")
    return 0
