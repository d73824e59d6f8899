"""One child process's log file, written as its output arrives."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

# The log may be on a network share: flush at line ends, and progress-only
# output (``\r`` updates) at most this often.
_LOG_FLUSH_INTERVAL_S = 1.0


class ChildLog:
    """One child's log file: opened once, written as output arrives.

    A log that cannot be written (a share gone away, a full disk) is dropped
    with a warning; the child keeps running.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._dirty = False
        self._at_line_start = True
        self._last_flush = time.monotonic()
        try:
            self._file = open(path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        except OSError as exc:
            log.warning("cannot open log %s (%s); the child runs without a log", path, exc)

    def write(self, data: bytes, *, flush: bool = False, own_line: bool = False) -> None:
        with self._lock:
            if self._file is None or not data:
                return
            if own_line and not self._at_line_start:
                data = b"\n" + data
            try:
                self._file.write(data)
                self._dirty = True
                self._at_line_start = data.endswith(b"\n")
                if flush or b"\n" in data or time.monotonic() - self._last_flush >= _LOG_FLUSH_INTERVAL_S:
                    self._flush()
            except OSError as exc:
                self._drop(exc)

    def write_note(self, text: str) -> None:
        """An Envy line (header, footer, notes), always on a line of its own."""
        self.write(f"=== envy: {text}\n".encode("utf-8", "replace"), flush=True, own_line=True)

    def flush_if_stale(self) -> None:
        with self._lock:
            if self._file is not None and self._dirty and time.monotonic() - self._last_flush >= _LOG_FLUSH_INTERVAL_S:
                try:
                    self._flush()
                except OSError as exc:
                    self._drop(exc)

    def close(self) -> None:
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.close()  # close is where a network share reports write errors
            except OSError as exc:
                log.warning("log %s may be incomplete: %s", self.path, exc)
            self._file = None

    def _flush(self) -> None:
        assert self._file is not None
        self._file.flush()
        self._dirty = False
        self._last_flush = time.monotonic()

    def _drop(self, exc: OSError) -> None:
        log.warning("cannot write log %s (%s); the child keeps running without a log", self.path, exc)
        try:
            assert self._file is not None
            self._file.close()
        except OSError:
            pass
        self._file = None
