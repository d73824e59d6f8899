"""Reading a renderer's output as it arrives: whole lines, the latest percent, the first error.

Output comes in arbitrary chunks (pipe reads), lines end in ``\\n``, ``\\r\\n``
or a bare ``\\r`` (POV-Ray and V-Ray redraw their progress line with ``\\r``).
The profile's ``progress`` regexes give a percent; its ``errors`` regexes mark
a failed render even when the renderer exits with 0.
"""

from __future__ import annotations

import re
from collections import deque

from envy.render.profiles import RendererProfile

_LINE_END = re.compile(r"\r\n|\r|\n")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # colour and cursor codes some renderers print
# A renderer that never ends a line must not grow the buffer without bound.
MAX_LINE = 64 * 1024
# The last lines kept to explain a failure that matched no error pattern.
LAST_LINES = 3
LAST_LINE_CHARS = 160
# Some renderers hard-wrap their messages (POV-Ray at 80 columns, mid-word, and
# indents the rest of a message): a line of exactly these widths was wrapped, and
# an indented line after an error line ending in "," continues it (Blender's
# indented " Time: ..." after a complete error line does not).
WRAP_WIDTHS = (79, 80)
ERROR_LINES = 4  # at most, joined into one error message
# POV-Ray also wraps at a space: a line a little short of 80 whose follower starts with
# " word" that would not have fitted (seen: 78 characters, then " matching } in 'sphere'").
CONSOLE_WIDTH = 80
WORD_WRAP_MIN = 60


def wrapped_before(previous: str, line: str) -> bool:
    """Whether ``line`` continues ``previous``, which the renderer wrapped at the console width."""
    if len(previous) in WRAP_WIDTHS:
        return True
    if not line.startswith(" ") or line.startswith("  ") or not WORD_WRAP_MIN <= len(previous) <= CONSOLE_WIDTH:
        return False
    word = line[1:].split(" ", 1)[0]
    return len(previous) + 1 + len(word) > CONSOLE_WIDTH


class ProgressParser:
    """Feed it chunks of a renderer's output; read ``percent`` and ``error``."""

    def __init__(self, profile: RendererProfile) -> None:
        self._progress = [re.compile(pattern) for pattern in profile.progress]
        self._errors = [re.compile(pattern) for pattern in profile.errors]
        self._tail = ""
        self._after_cr = False
        self._percent: float | None = None
        self._last: deque[str] = deque(maxlen=LAST_LINES)
        self._previous = ""  # the line before, in case an error line began on it
        self._error_parts: list[str] = []
        self._error_open = False  # the error message may continue on the next line
        # Which pattern the kept error matched: an earlier pattern in the profile is the more
        # telling one (POV-Ray's "Parse Error: ..." over its "Fatal error in parser"), and the
        # renderer's stdout and stderr may reach us in either order.
        self._error_rank = len(self._errors)
        self._run: list[str] = []  # the current run of wrapped lines (see _read_error)

    def feed(self, chunk: str) -> list[str]:
        """Add output; return the lines it completed (without line ends or colour codes)."""
        if not chunk:
            return []
        if self._after_cr and chunk.startswith("\n"):
            chunk = chunk[1:]  # the "\n" of a "\r\n" split across two chunks
        text = self._tail + chunk
        # A line ended by "\r" is complete now (progress must not lag a chunk behind),
        # but a "\n" that follows in the next chunk belongs to the same line end.
        self._after_cr = text.endswith("\r")
        parts = _LINE_END.split(text)
        tail = parts.pop()
        while len(tail) > MAX_LINE:
            parts.append(tail[:MAX_LINE])
            tail = tail[MAX_LINE:]
        self._tail = tail
        return [self._read(line) for line in parts]

    def flush(self) -> list[str]:
        """End of output: return the unfinished last line, if any."""
        tail, self._tail = self._tail, ""
        self._after_cr = False
        return [self._read(tail)] if tail else []

    @property
    def percent(self) -> float | None:
        """The latest progress, 0 to 100, or None before the first progress line."""
        return self._percent

    @property
    def error(self) -> str | None:
        """The first line matching the profile's first matching error pattern (wrapped parts joined), or None."""
        return "".join(self._error_parts).strip() if self._error_parts else None

    @property
    def last_lines(self) -> list[str]:
        """The last few non-blank lines that were not progress lines (to explain an unexplained failure)."""
        return list(self._last)

    def _read(self, raw: str) -> str:
        line = _ANSI.sub("", raw)
        progress_line = False
        for pattern in self._progress:
            matches = list(pattern.finditer(line))
            if matches:
                value = _percent_of(matches[-1])
                if value is not None:
                    self._percent = value
                    progress_line = True
                break
        if not progress_line and line.strip():
            self._last.append(line.strip()[:LAST_LINE_CHARS])
        self._read_error(line)
        self._previous = line
        return line

    def _rank(self, text: str) -> int:
        """The index of the first error pattern ``text`` matches; len(patterns) for none."""
        return next((i for i, pattern in enumerate(self._errors) if pattern.search(text)), len(self._errors))

    def _read_error(self, line: str) -> None:
        # The run of lines wrapped at the console width that this line ends: POV-Ray wraps at
        # 80 columns, so with a long scene path "Parse Error" itself can be cut in two and
        # only the joined run matches.
        if wrapped_before(self._previous, line) and len(self._run) < ERROR_LINES:
            self._run.append(line)
        else:
            self._run = [line]
        if self._error_open:
            last = self._error_parts[-1]
            wrapped = wrapped_before(last, line)
            continued = line[:1].isspace() and last.rstrip().endswith(",")
            if line.strip() and (wrapped or continued) and len(self._error_parts) < ERROR_LINES:
                self._error_parts.append(line)
                self._error_rank = min(self._error_rank, self._rank("".join(self._error_parts)))
                return
            self._error_open = False
        rank = self._rank("".join(self._run))
        if rank >= self._error_rank:
            return  # no error here, or not a more telling one than the error kept
        self._error_rank = rank
        self._error_parts = list(self._run)  # from where the wrapped message began
        self._error_open = True


def _percent_of(match: re.Match[str]) -> float | None:
    groups = match.groupdict()
    try:
        if groups.get("pct") is not None:
            value = float(groups["pct"])
        elif groups.get("done") is not None and groups.get("total") is not None:
            total = float(groups["total"])
            if total <= 0:
                return None
            value = 100.0 * float(groups["done"]) / total
        else:
            return None
    except ValueError:
        return None
    return min(100.0, max(0.0, value))  # husk's ALF_PROGRESS can pass 100
