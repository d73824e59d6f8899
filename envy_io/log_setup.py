"""Logging for Envy IO, configured once at the entry point (pipx's ``setup_logging``).

The console shows warnings (``-v``: info, ``-vv``: debug); every run also
writes a DEBUG file under the local state folder, and only the newest few of
those files are kept. Library modules just call ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

KEEP_LOG_FILES = 10
_MARK = "_envy_io_handler"


def setup_logging(verbose: int, log_dir: Path | None) -> Path | None:
    """Install the console and file handlers (replacing ours from an earlier call); return the file."""
    teardown_logging()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if verbose else "%(message)s"))
    setattr(console, _MARK, True)
    root.addHandler(console)
    if log_dir is None:
        return None
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / f"envy-io-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        file_handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        return None  # a read-only home must not stop the shell
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    setattr(file_handler, _MARK, True)
    root.addHandler(file_handler)
    prune_log_files(log_dir, KEEP_LOG_FILES)
    return path


def teardown_logging() -> None:
    """Remove and close the handlers ``setup_logging`` installed (tests, embedding)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
            handler.close()


def prune_log_files(log_dir: Path, keep: int) -> None:
    try:
        files = sorted(log_dir.glob("envy-io-*.log"), key=lambda p: p.name, reverse=True)
    except OSError:
        return
    for old in files[keep:]:
        try:
            old.unlink()
        except OSError:
            pass  # another envy-io pruned it first, or it is open on Windows


@contextmanager
def console_to(stream: TextIO) -> Iterator[None]:
    """Send console log lines to ``stream`` for a while (the shell's patched stdout, above the prompt)."""
    consoles = [
        h for h in logging.getLogger().handlers if getattr(h, _MARK, False) and isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
    ]
    previous = [h.setStream(stream) for h in consoles]
    try:
        yield
    finally:
        for handler, old in zip(consoles, previous, strict=True):
            if old is not None:
                handler.setStream(old)
