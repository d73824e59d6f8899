"""Logging set up once, at the entry point (pipx style).

The agent logs to ``<share>/logs/<host>/agent.log`` (rotated, bounded), or to
``$ENVY_LOG_DIR/<host>/agent.log`` (the entry point resolves that folder once:
``LocalDirs.logs``, envy/platform/dirs.py). The share can fail at any moment (EIO,
ESTALE, ENOSPC, permission denied): the handler then writes to a local
fallback file, retries the share with backoff, and carries on when it is back.
Library modules only call ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

from envy.share.end_write import open_text_at_end

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
AGENT_LOG = "agent.log"


def log_dir_for(share_logs: Path, host: str, local_logs: Path | None) -> Path:
    """Where a host's logs go: ``local_logs`` (ENVY_LOG_DIR) overrides the share's logs folder."""
    return (local_logs if local_logs is not None else share_logs) / host.lower()


class OwnRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log that only this agent writes, opened at its end without O_APPEND.

    Some SMB clients refuse ``O_WRONLY|O_APPEND`` (ENXIO, then the connection drops
    for seconds; issue 14). One writer per file (ENGINEERING §1.1) needs no append
    mode: open, seek to the end, write; rotation renames files only this agent writes.
    """

    def _open(self):  # type: ignore[no-untyped-def]
        return open_text_at_end(self.baseFilename, encoding=self.encoding or "utf-8", errors=self.errors)


class ResilientFileHandler(logging.Handler):
    """A rotating file handler on the share that falls back to a local file on OSError."""

    def __init__(self, path: Path, fallback: Path, max_bytes: int, backups: int, create_parents: bool = False) -> None:
        super().__init__()
        self.path = path
        # On the share only the host's own folder may be created: creating
        # logs/ itself would build a tree under an unmounted mount point.
        self.create_parents = create_parents
        self.fallback = fallback
        self.max_bytes = max_bytes
        self.backups = backups
        self._share: logging.handlers.RotatingFileHandler | None = None
        self._local: logging.handlers.RotatingFileHandler | None = None
        self._retry_at = 0.0
        self._backoff = 1.0

    def _open_share(self) -> logging.handlers.RotatingFileHandler:
        self.path.parent.mkdir(parents=self.create_parents, exist_ok=True)
        handler = OwnRotatingFileHandler(
            self.path, maxBytes=self.max_bytes, backupCount=self.backups, encoding="utf-8", delay=False
        )
        handler.setFormatter(self.formatter)
        # The default handleError prints a traceback to stderr and swallows the
        # error; we want to see it and fall back instead.
        handler.handleError = self._raise_current  # type: ignore[method-assign]
        return handler

    @staticmethod
    def _raise_current(record: logging.LogRecord) -> None:
        raise  # noqa: PLE0704 - re-raise the error being handled inside emit()

    def _local_handler(self) -> logging.handlers.RotatingFileHandler:
        if self._local is None:
            self.fallback.parent.mkdir(parents=True, exist_ok=True)
            self._local = logging.handlers.RotatingFileHandler(
                self.fallback, maxBytes=self.max_bytes, backupCount=1, encoding="utf-8"
            )
            self._local.setFormatter(self.formatter)
        return self._local

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if self._share is None and now >= self._retry_at:
            try:
                self._share = self._open_share()
                if self._backoff > 1.0:
                    self._local_handler().emit(
                        logging.makeLogRecord(
                            {
                                "msg": f"share log {self.path} is writable again",
                                "levelno": logging.INFO,
                                "levelname": "INFO",
                                "name": __name__,
                            }
                        )
                    )
                self._backoff = 1.0
            except OSError:
                self._fail(now)
        if self._share is not None:
            try:
                self._share.emit(record)
                return
            except OSError:
                self._fail(now)
        try:
            self._local_handler().emit(record)
        except Exception:
            pass  # nowhere left to log; the agent must not die of it

    def _fail(self, now: float) -> None:
        if self._share is not None:
            try:
                self._share.close()
            except OSError:
                pass
        self._share = None
        self._retry_at = now + self._backoff
        self._backoff = min(self._backoff * 2, 60.0)

    def close(self) -> None:
        for h in (self._share, self._local):
            if h is not None:
                try:
                    h.close()
                except OSError:
                    pass
        super().close()


def setup_agent_logging(log_file: Path, fallback: Path, verbose: int, max_bytes: int, backups: int,
                        *, local: bool) -> None:
    """``local``: the log folder is a local one (ENVY_LOG_DIR), whose parents may be created."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose > 0 else logging.INFO)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root.addHandler(console)
    share = ResilientFileHandler(log_file, fallback, max_bytes, backups, create_parents=local)
    share.setFormatter(logging.Formatter(FORMAT))
    share.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    root.addHandler(share)


def setup_cli_logging(verbose: int) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose > 0 else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file, reading only its end."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        block = max(4096, lines * 200)
        f.seek(max(0, size - block))
        data = f.read()
    text = data.decode("utf-8", "replace").splitlines()
    return text[-lines:] if lines > 0 else []
