"""A frame's render logs in ``jobs/<id>/logs/``, as the web monitor reads them: names, attempts, tails."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from envy.share.names import is_junk

LOG_TAIL_BYTES = 2048
LOG_NAME_RE = re.compile(r"^(?P<base>.+)\.(?P<host>[^.]+)\.(?P<attempt>\d{1,4})\.log$")


@dataclass(frozen=True)
class Attempt:
    """One render of one item by one host, from its log's name (and footer, once finished)."""

    host: str
    attempt: int
    log: str  # file name in jobs/<id>/logs/
    seconds: float | None = None
    exit_code: int | None = None


def read_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of a file, opened, read and closed at once (ENGINEERING §1.2, §1.12)."""
    import os
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)  # non-blocking: a FIFO must not hang the reader; no link out of the share
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        start = max(0, info.st_size - limit)
        os.lseek(fd, start, os.SEEK_SET)
        return os.read(fd, limit)
    finally:
        os.close(fd)


def parse_log_name(name: str) -> tuple[str, str, int] | None:
    """``shot.0001.lab1-01.2.log`` -> (``shot.0001``, ``lab1-01``, 2); None for any other name."""
    m = LOG_NAME_RE.match(name)
    if not m or is_junk(name) or "/" in name or "\\" in name:
        return None
    return m["base"], m["host"], int(m["attempt"])


def attempts_of(base: str, names: list[str]) -> list[Attempt]:
    """The attempts of one item from a listing of the job's logs/ folder."""
    found = []
    for name in names:
        parsed = parse_log_name(name)
        if parsed and parsed[0].casefold() == base.casefold():
            found.append(Attempt(parsed[1], parsed[2], name))
    return sorted(found, key=lambda a: (a.attempt, a.host))
