"""Kinds of setting values: what a key accepts, how it is cleaned, how it is described.

A kind checks one value read from YAML or JSON and returns the clean value
(``Whole(ge=0)`` turns ``3`` into ``3`` and refuses ``true``, ``"3"`` and
``-1``). Its ``wanted`` text says what is allowed; the same words go into the
error ("'workers' must be a whole number >= 1, got 'many'") and into the key
reference (docs/config-reference.md), so the two cannot disagree.

Every failure goes through ``Source.fail``, which raises the error class of the
file being read (ConfigError, ProfileError, ...) with the file and the key in
it. A kind never raises anything else, whatever the value: YAML and JSON from
the share are untrusted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn, Protocol

# An error quotes the bad value, cut short: a value from the share may be huge.
MAX_QUOTED = 80


def quoted(value: Any) -> str:
    """``repr(value)`` on one line, at most MAX_QUOTED characters."""
    try:
        text = repr(value)
    except Exception:  # a repr that fails must not replace the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 3] + "..."


# An error message is one line of a readable size, even when a key name from the share is not.
MAX_MESSAGE = 1000


def one_line(text: str) -> str:
    """``text`` with newlines and other unprintable characters escaped, cut to MAX_MESSAGE."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


@dataclass(frozen=True)
class Source:
    """Where values come from: the file (or "command line", "environment") and its error class."""

    where: str
    error: type[Exception]

    def fail(self, key: str, problem: str) -> NoReturn:
        """Raise "<where>: '<key>' <problem>" as this source's error."""
        raise self.error(one_line(f"{self.where}: '{key}' {problem}"))

    def fail_text(self, text: str) -> NoReturn:
        raise self.error(one_line(f"{self.where}: {text}"))


class Kind:
    """What a key accepts. Subclasses set ``wanted`` and override ``clean``."""

    wanted: str = "a value"

    def check(self, value: Any, key: str, source: Source) -> Any:
        """The clean value, or ``source.fail(...)`` naming ``key``."""
        return self.clean(value, key, source)

    def clean(self, value: Any, key: str, source: Source) -> Any:
        return value

    def refuse(self, value: Any, key: str, source: Source) -> NoReturn:
        source.fail(key, f"must be {self.wanted}, got {quoted(value)}")

    def parts(self) -> Iterator[tuple[str, Kind, Any, str]]:
        """Nested keys for the reference: (suffix such as ".hours" or "[].hours", kind, default, help)."""
        return iter(())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Number(Kind):
    """A number (whole or not), cleaned to float, within optional bounds."""

    def __init__(self, *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
                 le: float | None = None, unit: str = "") -> None:
        self.gt, self.ge, self.lt, self.le = gt, ge, lt, le
        noun = f"a number of {unit}" if unit else "a number"
        low = gt if gt is not None else ge
        high = lt if lt is not None else le
        if low is not None and high is not None:
            start = f"{low:g} (not included)" if gt is not None else f"{low:g}"
            end = f"up to (not including) {high:g}" if lt is not None else f"to {high:g}"
            self.wanted = f"{noun} from {start} {end}"
        elif gt is not None:
            self.wanted = f"{noun} greater than {gt:g}"
        elif ge is not None:
            self.wanted = f"{noun} >= {ge:g}"
        else:
            self.wanted = noun

    def clean(self, value: Any, key: str, source: Source) -> float:
        if not _is_number(value):
            self.refuse(value, key, source)
        try:
            number = float(value)
        except OverflowError:  # a whole number too big for a float
            self.refuse(value, key, source)
        if not math.isfinite(number) or not self._in_range(number):
            self.refuse(value, key, source)
        return number

    def _in_range(self, value: float) -> bool:
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))


class Whole(Kind):
    """A whole number within optional bounds; ``words`` are also allowed and map to a value,
    e.g. ``words={"unlimited": None}``."""

    def __init__(self, *, ge: int | None = None, le: int | None = None,
                 words: Mapping[str, Any] | None = None) -> None:
        self.ge, self.le = ge, le
        self.words = dict(words or {})
        if ge is not None and le is not None:
            wanted = f"a whole number from {ge} to {le}"
        elif ge is not None:
            wanted = f"a whole number >= {ge}"
        elif le is not None:
            wanted = f"a whole number <= {le}"
        else:
            wanted = "a whole number"
        self.wanted = wanted + "".join(f" or {word!r}" for word in self.words)

    def clean(self, value: Any, key: str, source: Source) -> Any:
        if isinstance(value, str) and value in self.words:
            return self.words[value]
        if isinstance(value, bool) or not isinstance(value, int):
            self.refuse(value, key, source)
        if (self.ge is not None and value < self.ge) or (self.le is not None and value > self.le):
            self.refuse(value, key, source)
        return value


class Flag(Kind):
    wanted = "true or false"

    def clean(self, value: Any, key: str, source: Source) -> bool:
        if not isinstance(value, bool):
            self.refuse(value, key, source)
        return value


class Text(Kind):
    """Text; optionally non-blank, capped in length, matching a pattern (described by ``wanted``)."""

    def __init__(self, wanted: str = "text", *, pattern: str | re.Pattern[str] | None = None, non_blank: bool = False,
                 max_length: int | None = None, blank_is_none: bool = False) -> None:
        self.wanted = wanted
        self.pattern = re.compile(pattern) if pattern else None
        self.non_blank, self.max_length, self.blank_is_none = non_blank, max_length, blank_is_none

    def clean(self, value: Any, key: str, source: Source) -> str | None:
        if self.blank_is_none and (value is None or value == ""):
            return None
        if not isinstance(value, str):
            self.refuse(value, key, source)
        if self.non_blank and (not value.strip() or "\x00" in value):
            self.refuse(value, key, source)
        if self.max_length is not None and len(value) > self.max_length:
            self.refuse(value, key, source)
        if self.pattern is not None and not self.pattern.match(value):
            self.refuse(value, key, source)
        return value


class Choice(Kind):
    """One of a few words."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.wanted = "one of " + ", ".join(repr(c) for c in choices)

    def clean(self, value: Any, key: str, source: Source) -> str:
        if not isinstance(value, str) or value not in self.choices:
            self.refuse(value, key, source)
        return value


class TextList(Kind):
    """A list of text items, cleaned to a tuple. ``None`` (an empty YAML key) is the empty list."""

    def __init__(self, wanted: str = "a list of text items", *, single_ok: bool = False,
                 non_blank: bool = False, placeholder_hint: bool = False) -> None:
        self.wanted, self.single_ok, self.non_blank = wanted, single_ok, non_blank
        self.placeholder_hint = placeholder_hint  # for templates like '{output}'

    def clean(self, value: Any, key: str, source: Source) -> tuple[str, ...]:
        if value is None:
            return ()
        if self.single_ok and isinstance(value, str):
            return (value,)
        if self.placeholder_hint and isinstance(value, list) and any(isinstance(item, dict) for item in value):
            # YAML reads an unquoted {output} as a mapping.
            source.fail(key, f"must be {self.wanted}; quote items with placeholders: '{{output}}'")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.refuse(value, key, source)
        if self.non_blank and not all(item.strip() for item in value):
            self.refuse(value, key, source)
        return tuple(value)


class WholeList(Kind):
    """A non-empty list of whole numbers, cleaned to a tuple."""

    wanted = "a list of whole numbers, like [0]"

    def clean(self, value: Any, key: str, source: Source) -> tuple[int, ...]:
        if not isinstance(value, list) or not value or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in value
        ):
            source.fail(key, f"must be {self.wanted}")
        return tuple(value)


class Optional(Kind):
    """``None`` (or a missing key), or a value of ``kind``."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.wanted = f"{kind.wanted}, or nothing"

    def clean(self, value: Any, key: str, source: Source) -> Any:
        return None if value is None else self.kind.check(value, key, source)

    def parts(self) -> Iterator[tuple[str, Kind, Any, str]]:
        return self.kind.parts()


class ListOf(Kind):
    """A list whose items are each ``item``; an item's key is ``key[i]``. Cleaned to a tuple."""

    def __init__(self, item: Kind, wanted: str) -> None:
        self.item, self.wanted = item, wanted

    def clean(self, value: Any, key: str, source: Source) -> tuple[Any, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.refuse(value, key, source)
        return tuple(self.item.check(v, f"{key}[{i}]", source) for i, v in enumerate(value))

    def parts(self) -> Iterator[tuple[str, Kind, Any, str]]:
        for suffix, kind, default, help_text in self.item.parts():
            yield f"[]{suffix}", kind, default, help_text


class MapOf(Kind):
    """A mapping from names (``names`` says what they are) to values of ``item``; an entry's key
    is ``key.name``. Names are folded to lower case with ``lower_names``. Cleaned to a read-only
    mapping; ``None`` is the empty mapping."""

    def __init__(self, item: Kind, wanted: str, *, names: str = "name", lower_names: bool = False) -> None:
        self.item, self.wanted, self.names, self.lower_names = item, wanted, names, lower_names

    def clean(self, value: Any, key: str, source: Source) -> Mapping[str, Any]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            self.refuse(value, key, source)
        out: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, (str, int, float)) or isinstance(name, bool):
                source.fail(f"{key}.{quoted(name)}", f"is not a {self.names}")
            text = str(name).lower() if self.lower_names else str(name)
            out[text] = self.item.check(item, f"{key}.{name}", source)
        return MappingProxyType(out)

    def parts(self) -> Iterator[tuple[str, Kind, Any, str]]:
        for suffix, kind, default, help_text in self.item.parts():
            yield f".<{self.names}>{suffix}", kind, default, help_text


class RecordKeys(Protocol):
    """What a ``Record`` needs of the ``Schema`` it nests (schema.py builds on this
    module, so the nested schema is seen through this protocol, not imported)."""

    def clean(self, data: Mapping[Any, Any], source: Source, *, prefix: str = "",
              fill_defaults: bool = True, rules: bool = True) -> dict[str, Any]: ...

    def rows(self) -> Iterator[tuple[str, Kind, Any, str]]: ...


class Record(Kind):
    """A nested mapping with its own keys (a ``Schema``): a policy window, a renderer's settings.

    Cleaned to a read-only mapping of the keys given, plus defaults when ``fill_defaults``.
    """

    def __init__(self, schema: RecordKeys, wanted: str, *, fill_defaults: bool = False) -> None:
        self.schema, self.wanted, self.fill_defaults = schema, wanted, fill_defaults

    def clean(self, value: Any, key: str, source: Source) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.refuse(value, key, source)
        return MappingProxyType(self.schema.clean(value, source, prefix=key, fill_defaults=self.fill_defaults))

    def parts(self) -> Iterator[tuple[str, Kind, Any, str]]:
        for name, kind, default, help_text in self.schema.rows():
            yield f".{name}", kind, default, help_text


class Checked(Kind):
    """``kind``, then a custom check that may also convert: ``then(value, key, source)``.

    The check reports a problem with ``source.fail(key, ...)``; it may raise nothing else.
    """

    def __init__(self, kind: Kind, then: Callable[[Any, str, Source], Any], wanted: str | None = None) -> None:
        self.kind, self.then = kind, then
        self.wanted = wanted or kind.wanted

    def clean(self, value: Any, key: str, source: Source) -> Any:
        return self.then(self.kind.check(value, key, source), key, source)

    def parts(self) -> Iterator[tuple[str, Kind, Any, str]]:
        return self.kind.parts()


def regex_check(*, groups: Sequence[str] = ()) -> Callable[[Any, str, Source], Any]:
    """A check for text that must compile as a Python regular expression with ``groups``."""

    def check(value: str, key: str, source: Source) -> str:
        try:
            compiled = re.compile(value)
        except (re.error, RecursionError, OverflowError) as exc:
            source.fail(key, f"is not a valid regular expression: {exc}")
        if not set(groups) <= set(compiled.groupindex):
            named = " and ".join(f"(?P<{g}>...)" for g in groups)
            source.fail(key, f"must have named groups {named}")
        return value

    return check
