"""Regular expressions from the share, on an engine that cannot backtrack for ever (Must-hold 4).

A ``re:`` selector or a farm's ``host_pattern`` is written by whoever can
write the instruction file or config.yaml. Python's ``re`` backtracks:
``re:(a+)+b`` against a long name holds the GIL for hours, so the agent's
heartbeat and ``quit()`` stop too. RE2 (the google-re2 wheel) matches in time
linear in the text and refuses constructs that need backtracking
(backreferences, lookaround). A pattern whose compiled program is bigger
than :data:`MAX_PROGRAM_SIZE` is refused as too costly: real selectors are a
few dozen instructions.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

try:  # pragma: no branch - the wheel exists for every platform Envy runs on
    import re2 as _re2  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover
    _re2 = None

# Longest pattern text accepted; the program-size cap below is the real bound.
MAX_PATTERN_CHARS = 512
# RE2 program size (instructions); ``.{1000}`` is about 8000, ``lab[12]-0[1-3]`` about 20.
MAX_PROGRAM_SIZE = 2000
_HUGE_REPEAT = re.compile(r"\{\d*[0-9]{5,}")
# Memory RE2 may use for one pattern's automata.
_MAX_MEM = 8 << 20


class UnsafePattern(ValueError):
    """A pattern that is invalid, needs backtracking, or is too costly (message is one line)."""


class Match(Protocol):
    def group(self, name: str) -> Any: ...


class SafePattern:
    """A compiled RE2 pattern: ``fullmatch`` and the named groups, case-insensitive."""

    def __init__(self, source: str, compiled: Any) -> None:
        self.pattern = source
        self._compiled = compiled
        self.groupindex: dict[str, int] = dict(compiled.groupindex)

    def fullmatch(self, text: str) -> Match | None:
        return self._compiled.fullmatch(text)  # type: ignore[no-any-return,unused-ignore]


def compile_builtin(source: str) -> SafePattern:
    """A pattern Envy itself ships (the default host pattern), never one from the share.

    RE2 when it is installed; otherwise Python's ``re``, which is safe here because the
    pattern is ours and the text it meets is a host name (at most 255 characters). An
    install without the google-re2 wheel (pip on a platform with none; the share copy
    carries it for every target, envy/app/build.py) still names hosts, and only refuses
    ``re:`` selectors and custom host patterns.
    """
    if _re2 is not None:
        return compile_safe(source)
    return SafePattern(source, re.compile(source, re.IGNORECASE))


def compile_safe(source: str) -> SafePattern:
    """Compile ``source`` case-insensitively with RE2; UnsafePattern says why it is refused."""
    if not isinstance(source, str):
        raise UnsafePattern(f"a regular expression is text, not {type(source).__name__}")
    if len(source) > MAX_PATTERN_CHARS:
        raise UnsafePattern(f"longer than {MAX_PATTERN_CHARS} characters")
    if _HUGE_REPEAT.search(source):
        # RE2 reads an overflowing count as literal text: say what was meant instead.
        raise UnsafePattern("a repetition count over 1000 is not allowed")
    if _re2 is None:  # pragma: no cover
        raise UnsafePattern("regular expressions need the google-re2 package (pip install google-re2)")
    options = _re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    options.max_mem = _MAX_MEM
    try:
        compiled = _re2.compile(source, options)
    except Exception as exc:  # re2.error, and TypeError/ValueError for odd input
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        hint = " (backreferences and lookaround are not supported)" if "escape" in str(reason) or "(?" in source else ""
        raise UnsafePattern(f"{reason}{hint}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise UnsafePattern(
            f"too costly to match ({compiled.programsize} steps, at most {MAX_PROGRAM_SIZE}): use a simpler pattern"
        )
    return SafePattern(source, compiled)
