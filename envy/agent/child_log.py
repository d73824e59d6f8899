"""One child process's log file, written as its output arrives, its head and tail kept within a cap.

A child can print gigabytes (4.5 GB in 10 s was measured from a looping
renderer). The log keeps the first half of ``cap`` bytes as they arrive;
after that only the latest half is kept in memory and written at close,
behind one ``=== envy: ... cut ...`` line saying how much was left out
(Must-hold 8). Envy's own notes are always written.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import BinaryIO

from envy.share.end_write import open_at_end

log = logging.getLogger(__name__)

# The log may be on a network share: flush at line ends, and progress-only
# output (``\r`` updates) at most this often.
_LOG_FLUSH_INTERVAL_S = 1.0
# Default cap of one child's log: the head and the tail, each half of it.
DEFAULT_LOG_CAP = 4 * 1024 * 1024


class ChildLog:
    """One child's log file: opened once, written as output arrives.

    A log that cannot be written (a share gone away, a full disk) is dropped
    with a warning; the child keeps running.
    """

    def __init__(self, path: Path, cap: int = DEFAULT_LOG_CAP) -> None:
        self.path = path
        self._head_left = cap // 2  # bytes of output still written as they come
        self._tail = bytearray()  # after that: the latest output, at most cap // 2 bytes
        self._tail_cap = cap - cap // 2
        self._cut = 0  # bytes left out between head and tail
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._dirty = False
        self._at_line_start = True
        self._last_flush = time.monotonic()
        try:
            self._file = open_at_end(path)  # kept open for the child's lifetime; not O_APPEND (end_write.py)
        except OSError as exc:
            log.warning("cannot open log %s (%s); the child runs without a log", path, exc)

    def write(self, data: bytes, *, flush: bool = False, own_line: bool = False) -> None:
        with self._lock:
            if self._file is None or not data:
                return
            if not own_line:
                data = self._keep_within_cap(data)
                if not data:
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

    def _keep_within_cap(self, data: bytes) -> bytes:
        """The part of ``data`` to write now; the rest goes to the tail buffer."""
        if self._head_left >= len(data):
            self._head_left -= len(data)
            return data
        now, later = data[: self._head_left], data[self._head_left:]
        self._head_left = 0
        self._tail += later
        if len(self._tail) > self._tail_cap:
            drop = len(self._tail) - self._tail_cap
            self._cut += drop
            del self._tail[:drop]
        return now

    def _write_tail(self) -> None:
        with self._lock:
            tail, self._tail = bytes(self._tail), bytearray()
            cut, self._cut = self._cut, 0
        if cut:
            note = f"=== envy: {cut} bytes of output cut here (the log keeps its head and tail) ===\n"
            self.write(note.encode(), own_line=True)
        if tail:
            self.write(tail, own_line=True, flush=True)

    def write_note(self, text: str) -> None:
        """An Envy line (header, footer, notes), always on a line of its own, after the kept tail."""
        self._write_tail()
        self.write(f"=== envy: {text}\n".encode("utf-8", "replace"), flush=True, own_line=True)

    def flush_if_stale(self) -> None:
        with self._lock:
            if self._file is not None and self._dirty and time.monotonic() - self._last_flush >= _LOG_FLUSH_INTERVAL_S:
                try:
                    self._flush()
                except OSError as exc:
                    self._drop(exc)

    def close(self) -> None:
        self._write_tail()
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
