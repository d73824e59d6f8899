"""Field-by-field checks for JSON read from the share (issue 9 Must-hold 9).

A file from the share is somebody else's writing: a wrong type in one field
must become one warning naming the file and the field, never a TypeError in
a loop three calls later. Each reader states the type of every field it uses;
:func:`check_fields` raises ValueError at the first one that does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The longest text any Envy field holds (paths, messages); more is not ours.
MAX_TEXT = 4096
# Whole numbers Envy stores fit in 63 bits (counters, pids, priorities).
MAX_INT = 2**63 - 1

INT = "int"
NUMBER = "number"
TEXT = "text"
BOOL = "bool"
TEXT_LIST = "text list"
OPT_INT = "int or null"
OPT_NUMBER = "number or null"
OPT_TEXT = "text or null"
LIST = "list"
DICT = "object"


def _fits(value: Any, kind: str) -> bool:
    if kind in (OPT_INT, OPT_NUMBER, OPT_TEXT) and value is None:
        return True
    if kind in (INT, OPT_INT):
        return isinstance(value, int) and not isinstance(value, bool) and -MAX_INT <= value <= MAX_INT
    if kind in (NUMBER, OPT_NUMBER):
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and value == value and abs(value) < 1e300)  # no NaN, no inf
    if kind in (TEXT, OPT_TEXT):
        return isinstance(value, str) and len(value) <= MAX_TEXT
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == TEXT_LIST:
        return isinstance(value, list) and all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value)
    if kind == LIST:
        return isinstance(value, list)
    if kind == DICT:
        return isinstance(value, dict)
    raise AssertionError(f"unknown field kind {kind}")


def check_fields(data: Mapping[str, Any], spec: Mapping[str, str], where: str) -> None:
    """ValueError naming the first field of ``data`` that ``spec`` knows and that has the wrong type."""
    for name, kind in spec.items():
        if name in data and not _fits(data[name], kind):
            shown = repr(data[name])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ValueError(f"{where}: field {name!r} must be {kind}, got {shown}")
