"""The instruction file: its line format, reading it safely, and stamping new commands.

Each command is one human-readable line::

    [0196a3f2c4e81b2c 2026-11-21T11:42:00.123Z] lab3 03 render()

The stamp holds a unique id (sortable: milliseconds since the epoch in hex,
then random bits) and the issue time in UTC. In signed mode a third field
``sig=HEX`` follows (see envy/protocol/signing.py). Lines starting with ``#``
are comments; a line without a stamp is one a person added by hand: agents
skip it and Envy IO stamps it on its next write.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from envy.protocol.selectors import SelectorError, split_line

# A line longer than this is reported and skipped before any parsing.
MAX_LINE_CHARS = 16384
# An instruction file larger than this is read only up to here (the rest is reported).
MAX_FILE_BYTES = 4 * 1024 * 1024

# Ids are 64-bit: 48 bits of milliseconds since the epoch, 16 random bits.
ID_BITS = 64
MAX_ID = 2**ID_BITS - 1
# An id's time part and its stamp's issue time come from the same clock at the same moment;
# ids derived from an earlier one in the same millisecond drift by microseconds. More than
# this apart, the id was not made by Envy IO (Must-hold 3).
ID_WINDOW_S = 3600.0
# A stamp further in the future than this is refused whatever the mode: clocks between lab
# machines differ by minutes, not a day, and a far-future stamp would never expire.
MAX_FUTURE_S = 86400.0

_STAMP_RE = re.compile(
    r"^\[(?P<id>[0-9a-f]{16}) (?P<issued>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z)"
    r"(?: sig=(?P<sig>[0-9a-f]{64}))?\]\s+(?P<rest>.*)$"
)


@dataclass(frozen=True)
class Instruction:
    id: str
    issued: float  # seconds since the epoch, by the issuing shell's clock
    selector: str
    command: str
    signature: str | None = None
    line_no: int = 0

    @property
    def text(self) -> str:
        return f"{self.selector} {self.command}"

    def format(self) -> str:
        sig = f" sig={self.signature}" if self.signature else ""
        return f"[{self.id} {format_time(self.issued)}{sig}] {self.text}"


@dataclass(frozen=True)
class BadLine:
    line_no: int
    text: str
    reason: str

    def describe(self) -> str:
        shown = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"instruction line {self.line_no} skipped ({self.reason}): {shown!r}"


@dataclass(frozen=True)
class InstructionFile:
    instructions: list[Instruction]
    bad: list[BadLine]
    unstamped: list[str]  # hand-written lines, as written
    comments: list[str]


def format_time(epoch: float) -> str:
    dt = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    return datetime.strptime(
        text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z" if "." in text else "%Y-%m-%dT%H:%M:%S%z"
    ).timestamp()


def id_time(command_id: str) -> float:
    """The issue time an id carries (its top 48 bits are milliseconds since the epoch)."""
    return (int(command_id, 16) >> 16) / 1000.0


def id_in_window(command_id: str, around: float, window: float = ID_WINDOW_S) -> bool:
    """True when the id's time part is within ``window`` seconds of ``around`` (a clock reading)."""
    try:
        return abs(id_time(command_id) - around) <= window
    except ValueError:
        return False


def new_id(now: float | None = None, after: str | None = None) -> str:
    """A unique 64-bit id whose text order is issue order: greater than ``after`` when given.

    Signed mode only runs ids newer than the last one run, so ids written in
    one file must increase even within one millisecond. ``after`` is used only
    when it is a real id near ``now``: one far ahead (a hand-written line with
    an id near 2^64) would make every later id overflow or be "replayed".
    """
    now = time.time() if now is None else now
    ms = int(now * 1000)
    candidate = f"{ms:012x}{secrets.randbits(16):04x}"
    if after is not None and candidate <= after and id_in_window(after, now):
        bumped = int(after, 16) + 1 + secrets.randbelow(16)
        if bumped <= MAX_ID:
            candidate = f"{bumped:016x}"
    return candidate


def stamp(selector: str, command: str, now: float | None = None, after: str | None = None) -> Instruction:
    now = time.time() if now is None else now
    return Instruction(id=new_id(now, after), issued=now, selector=selector.strip(), command=command.strip())


def parse_instruction_line(line: str, line_no: int = 0, now: float | None = None) -> Instruction | BadLine | str | None:
    """One line: an Instruction, a BadLine, the text of an unstamped line, or None for blank/comment."""
    if len(line) > MAX_LINE_CHARS:
        return BadLine(line_no, line[:80], f"longer than {MAX_LINE_CHARS} characters")
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    match = _STAMP_RE.match(text)
    if not match:
        if text.startswith("["):
            return BadLine(line_no, text, "the [ID TIME] stamp is not valid")
        return text
    try:
        issued = parse_time(match["issued"])
        selector, command = split_line(match["rest"])
    except (ValueError, SelectorError, OverflowError) as exc:
        return BadLine(line_no, text, str(exc).splitlines()[0] if str(exc) else "cannot parse")
    if now is not None and issued > now + MAX_FUTURE_S:
        return BadLine(
            line_no, text, f"issued {format_time(issued)[:10]}, in the future: a stamp is at most a day ahead"
        )
    return Instruction(match["id"], issued, selector, command, match["sig"], line_no)


def parse_instruction_file(data: bytes, now: float | None = None) -> InstructionFile:
    """Parse the whole file. Never raises: anything malformed becomes a BadLine.

    ``now`` (the reader's clock; default: the local clock) refuses stamps far in the future.
    """
    now = time.time() if now is None else now
    bad: list[BadLine] = []
    if len(data) > MAX_FILE_BYTES:
        bad.append(BadLine(0, "", f"file larger than {MAX_FILE_BYTES} bytes; the rest was not read"))
        data = data[:MAX_FILE_BYTES]
    instructions: list[Instruction] = []
    unstamped: list[str] = []
    comments: list[str] = []
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            bad.append(BadLine(line_no, raw[:80].decode("utf-8", "replace"), "not UTF-8 text"))
            continue
        if "\x00" in line:
            bad.append(BadLine(line_no, line.replace("\x00", "\\0")[:80], "contains a NUL character"))
            continue
        parsed = parse_instruction_line(line, line_no, now)
        if parsed is None:
            if line.strip().startswith("#"):
                comments.append(line)
        elif isinstance(parsed, Instruction):
            instructions.append(parsed)
        elif isinstance(parsed, BadLine):
            bad.append(parsed)
        else:
            unstamped.append(parsed)
    return InstructionFile(instructions, bad, unstamped, comments)


def render_instruction_file(comments: list[str], instructions: list[Instruction], bad_lines: list[str]) -> str:
    """The file's text: the header comments, kept malformed lines (commented out), then the commands."""
    lines = list(comments)
    lines += [f"# skipped: {line}" for line in bad_lines]
    lines += [ins.format() for ins in instructions]
    return "\n".join(lines) + "\n"


def id_problem(ins: Instruction, now: float, window: float = ID_WINDOW_S) -> str | None:
    """Why a (signed) line's id cannot be trusted to order commands, or None (Must-hold 3).

    Replay protection keeps the greatest id run so far; an id far from its own
    issue time, or ahead of the share clock, would lock out every later command.
    """
    if not id_in_window(ins.id, ins.issued, window):
        return "its id does not carry its issue time (not made by Envy IO)"
    if id_time(ins.id) > now + window:
        return f"its id is more than {window:g} s ahead of the share clock"
    if ins.issued > now + window:
        return f"issued more than {window:g} s ahead of the share clock"
    return None
