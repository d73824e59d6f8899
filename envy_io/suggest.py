"""Did you mean: the known word a misspelt one most likely is (difflib, from memory, no share reads)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known word ``word`` most likely is a misspelling of, or None."""
    candidates = {k.casefold(): k for k in known}
    found = difflib.get_close_matches(word.casefold(), list(candidates), n=1, cutoff=0.6)
    return candidates[found[0]] if found else None


def did_you_mean(word: str, known: Iterable[str], suffix: str = "") -> str:
    """``did you mean print(...)?`` or ``''``."""
    match = closest(word, known)
    return f"did you mean {match}{suffix}?" if match else ""


def add_hint(message: str, hint: str) -> str:
    """Put a hint right after the first clause (``unknown command 'prnt': did you mean print(...)? known...``)."""
    if not hint:
        return message
    head, sep, rest = message.partition(": ")
    return f"{head}: {hint} {rest}" if sep else f"{message}; {hint}"
