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

_STAMP_RE = re.compile(
    r"^\[(?P<id>[0-9a-f]{16}) (?P<issued>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z)(?: sig=(?P<sig>[0-9a-f]{64}))?\]\s+(?P<rest>.*)$"
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
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z" if "." in text else "%Y-%m-%dT%H:%M:%S%z").timestamp()


def new_id(now: float | None = None, after: str | None = None) -> str:
    """A unique id whose text order is issue order: greater than ``after`` when given.

    Signed mode only runs ids newer than the last one run, so ids written in
    one file must increase even within one millisecond.
    """
    ms = int((time.time() if now is None else now) * 1000)
    candidate = f"{ms:012x}{secrets.randbits(16):04x}"
    if after is not None and candidate <= after:
        candidate = f"{int(after, 16) + 1 + secrets.randbelow(16):016x}"
    return candidate


def stamp(selector: str, command: str, now: float | None = None, after: str | None = None) -> Instruction:
    now = time.time() if now is None else now
    return Instruction(id=new_id(now, after), issued=now, selector=selector.strip(), command=command.strip())


def parse_instruction_line(line: str, line_no: int = 0) -> Instruction | BadLine | str | None:
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
    except (ValueError, SelectorError) as exc:
        return BadLine(line_no, text, str(exc).splitlines()[0] if str(exc) else "cannot parse")
    return Instruction(match["id"], issued, selector, command, match["sig"], line_no)


def parse_instruction_file(data: bytes) -> InstructionFile:
    """Parse the whole file. Never raises: anything malformed becomes a BadLine."""
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
        parsed = parse_instruction_line(line, line_no)
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
