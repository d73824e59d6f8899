"""One job's frames as people ask about them: state, host, attempts, time, reason, and their logs.

Each attempt at an item leaves one log on the share, written by the agent
that made it (worker.py): ``<job>/logs/<base>.<host>.<attempt>.log``, ending
in the child's footer (``=== envy: exit code 1 after 2.3 s``) and, for a
failure, ``ENVY FAILED: <reason>``. Everything here is read from those
files and the item names; nothing is written. Logs are share files like any
other (ENGINEERING §1.12): only regular files, and only their last
``MAX_LOG_BYTES`` are read.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path

from envy.render.claims import ItemName, ItemPattern, frame_number
from envy.render.jobs import Job
from envy.render.overview import failure_reason, work_folder
from envy.render.remap import PathRemap
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

MAX_LOG_BYTES = 256 * 1024  # of one attempt's log, from its end
_FOOTER_RE = re.compile(r"^=== envy: exit code (-?\d+) after ([0-9.]+) s")
STATE_WORDS = {"pending": "pending", "work": "running", "done": "done", "failed": "failed"}


@dataclass(frozen=True)
class AttemptLog:
    """One attempt's log file."""

    host: str
    attempt: int
    path: Path


@dataclass(frozen=True)
class FrameRow:
    """What ``jobs JOB --frames`` shows about one item."""

    item: str  # original name
    frame: int | None
    state: str  # pending | running | done | failed
    host: str
    attempts: int
    seconds: float | None  # of the last finished attempt
    reason: str  # for a failed item (or a retry's last failure)

    def to_json(self) -> dict[str, object]:
        return {"item": self.item, "frame": self.frame, "state": self.state, "host": self.host,
                "attempts": self.attempts, "seconds": self.seconds, "reason": self.reason}


def attempt_logs(layout: ShareLayout, job: Job, base: str, fs: ShareFS) -> list[AttemptLog]:
    """The logs of every attempt at item ``base``, in the order they were made (attempt number, then time)."""
    folder = job.logs_dir(layout)
    try:
        names = fs.listdir(folder)
    except OSError:
        return []
    prefix = base.casefold() + "."
    found: list[tuple[int, float, AttemptLog]] = []
    for name in names:
        if not name.casefold().startswith(prefix) or not name.casefold().endswith(".log"):
            continue
        middle = name[len(prefix):-len(".log")]
        host, _, number = middle.rpartition(".")
        if not host or not number.isdigit() or "." in host and not _looks_like_host(host):
            continue
        path = folder / name
        try:
            mtime = fs.stat(path).st_mtime
        except OSError:
            continue
        found.append((int(number), mtime, AttemptLog(host, int(number), path)))
    return [a for _, _, a in sorted(found, key=lambda t: (t[0], t[1]))]


def _looks_like_host(host: str) -> bool:
    # Another item's log whose base starts with ours ("shot.0001" vs "shot.0001.b") has a dot-free
    # host after its own base; a host name itself may hold dots (lab3-03.example.org).
    return all(part and part.replace("-", "").replace("_", "").isalnum() for part in host.split("."))


def read_log(path: Path, fs: ShareFS, limit: int = MAX_LOG_BYTES, start: int = 0) -> tuple[str, int]:
    """The text of a log from byte ``start`` (at most its last ``limit`` bytes) and the offset read up to.

    Only a regular file is opened (a FIFO would block a reader for ever).
    """
    info = fs.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"{path} is not a regular file")
    with open(path, "rb") as f:
        f.seek(0, 2)
        end = f.tell()
        begin = max(start, end - limit)
        f.seek(begin)
        data = f.read(end - begin)
    skipped = f"[... {begin - start} bytes not shown ...]\n" if begin > start else ""
    return skipped + data.decode("utf-8", "replace"), begin + len(data)


def _seconds(path: Path, fs: ShareFS) -> float | None:
    try:
        text, _ = read_log(path, fs, limit=4096)
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        m = _FOOTER_RE.match(line.strip())
        if m:
            return float(m.group(2))
    return None


def find_items(names: list[str], pattern: ItemPattern, wanted: str) -> list[ItemName]:
    """The items ``wanted`` names: a frame number (``7``), a base (``shot.0007``) or a file name."""
    items = [i for i in map(pattern.parse, names) if i is not None]
    text = wanted.strip().casefold()
    if text.isdigit():
        return [i for i in items if frame_number(i.base) == int(text)]
    return [i for i in items if text in (i.base.casefold(), i.original.casefold(), i.name().casefold())]


def frame_rows(layout: ShareLayout, job: Job, remap: PathRemap, fs: ShareFS) -> list[FrameRow]:
    """Every item of the job, sorted by name (OSError when its folder cannot be listed)."""
    pattern = ItemPattern(job.extensions)
    rows = []
    for item in sorted((i for i in map(pattern.parse, fs.listdir(work_folder(layout, job, remap))) if i is not None),
                       key=lambda i: i.key):
        logs = attempt_logs(layout, job, item.base, fs)
        last = logs[-1] if logs else None
        reason = ""
        if item.state == "failed" or (item.state == "pending" and item.failures):
            reason = failure_reason(layout, job, item.base, item.host, item.failures)
        seconds = _seconds(last.path, fs) if last is not None and item.state != "work" else None
        host = item.host or (last.host if last else "")
        rows.append(FrameRow(item.original, frame_number(item.base), STATE_WORDS[item.state], host,
                             max(len(logs), item.failures + (1 if item.state in ("done", "work") else 0)),
                             seconds, reason))
    return rows
