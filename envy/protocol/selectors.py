"""Host selectors: the ``SELECTOR`` half of an instruction line ``SELECTOR COMMAND``.

Forms (all case-insensitive, never a substring match)::

    *                    every host
    lab3 *               every host of lab3
    lab3 03              host 3 of lab3 (lab3-03, LAB3-3, GNOMON-LAB3-03, ...)
    lab3 1-12            a range of host numbers
    lab3 01,05,7-9       a list of numbers and ranges
    lab3-03              one host by name (or by its lab/number split)
    re:lab[12]-0[1-3]    a regular expression matched against the whole host name
    @seniors             a named group whose members are selectors themselves

Host names are split into a lab and a number by a :class:`HostNamePattern`, so
``lab3 03`` compares numbers (3 == 3), not text: ``lab1 1`` can never select
``lab1-10`` and ``lab1 *`` can never select ``lab10-01``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from envy.protocol.safe_regex import SafePattern, UnsafePattern, compile_builtin, compile_safe

__all__ = [
    "DEFAULT_HOST_PATTERN",
    "MAX_LINE_BYTES",
    "HostNamePattern",
    "Selector",
    "SelectorError",
    "parse_selector",
    "split_line",
]

# A host is "<anything->LAB-NUMBER[.domain]": the lab is the last dash-separated
# part before the number, so a school prefix (GNOMON-LAB3-03) and a DNS suffix
# (lab3-03.local on macOS) do not change which lab a machine belongs to.
DEFAULT_HOST_PATTERN = r"(?:[\w.-]*-)?(?P<lab>\w+)-(?P<num>[0-9]+)(?:\.[\w.-]*)?"

# An instruction line is typed by a person; anything bigger is a mistake or an
# attack, and capping it first bounds the work every later step can do.
MAX_LINE_BYTES = 64 * 1024

# More digits than any lab numbers its machines; also keeps int() cheap.
_MAX_NUMBER_DIGITS = 6
_NAME = r"[\w.-]+"
_NAME_RE = re.compile(_NAME)
_NUMBERS_RE = re.compile(r"[0-9]{1,6}(?:-[0-9]{1,6})?(?:,[0-9]{1,6}(?:-[0-9]{1,6})?)*")
# The command starts at the first token that looks like a call: name( or NV.name( / IO.name(.
_COMMAND_START_RE = re.compile(r"(?:(?:NV|IO)\.)?[A-Za-z_][A-Za-z0-9_]*\(")
_TOKEN_RE = re.compile(r"\S+")
_REGEX_PREFIX = "re:"
_GROUP_PREFIX = "@"
_EXCERPT_CHARS = 60

_FORMS = "use *, LAB *, LAB 03, LAB 1-12, LAB 01,05, a host name, re:REGEX or @group"


class SelectorError(ValueError):
    """A selector or instruction line that cannot be understood (message is one line)."""

    def __init__(self, message: str) -> None:
        # Messages end up in one-line shell and log output; never let quoted
        # user text break that.
        super().__init__(" ".join(message.splitlines()))


def _excerpt(text: str) -> str:
    """Quote user text for an error message: repr escapes newlines, long text is cut."""
    if len(text) > _EXCERPT_CHARS:
        return repr(text[:_EXCERPT_CHARS]) + "..."
    return repr(text)


@dataclass(frozen=True)
class HostNamePattern:
    """How a host name splits into a lab and a host number.

    ``regex`` must define the named groups ``lab`` and ``num`` and is matched
    against the whole host name, case-insensitively.
    """

    regex: str = DEFAULT_HOST_PATTERN
    _compiled: SafePattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The pattern comes from config.yaml on the share: matched by RE2, never by a backtracking engine.
        try:
            compiled = compile_builtin(self.regex) if self.regex == DEFAULT_HOST_PATTERN else compile_safe(self.regex)
        except UnsafePattern as exc:
            raise SelectorError(f"invalid host name pattern {_excerpt(self.regex)}: {exc}") from None
        if not {"lab", "num"} <= set(compiled.groupindex):
            raise SelectorError(
                f"host name pattern {_excerpt(self.regex)} needs the named groups (?P<lab>...) and (?P<num>...)"
            )
        object.__setattr__(self, "_compiled", compiled)

    def split(self, host: str) -> tuple[str, int] | None:
        """``("lab3", 3)`` for ``LAB3-03`` or ``GNOMON-LAB3-03``; None when the name does not fit."""
        match = self._compiled.fullmatch(host.strip())
        if match is None:
            return None
        number = match.group("num")
        # A custom pattern may capture something that is not a number; such a
        # host simply has no lab/number identity.
        if not number or not number.isascii() or not number.isdigit() or len(number) > 18:
            return None
        return match.group("lab").lower(), int(number)


class _Term(Protocol):
    """One alternative of a selector; a selector matches if any term does."""

    def matches(self, host: str, split: tuple[str, int] | None) -> bool: ...


@dataclass(frozen=True)
class _AnyHost:
    def matches(self, host: str, split: tuple[str, int] | None) -> bool:
        return True


@dataclass(frozen=True)
class _LabHosts:
    lab: str
    # Inclusive (low, high) ranges; None means every host of the lab.
    ranges: tuple[tuple[int, int], ...] | None

    def matches(self, host: str, split: tuple[str, int] | None) -> bool:
        if split is None or split[0] != self.lab:
            return False
        if self.ranges is None:
            return True
        return any(low <= split[1] <= high for low, high in self.ranges)


@dataclass(frozen=True)
class _HostName:
    name: str  # lower case
    split: tuple[str, int] | None

    def matches(self, host: str, split: tuple[str, int] | None) -> bool:
        # lab3-3 and lab3-03 are the same machine: compare the split too.
        return host.lower() == self.name or (self.split is not None and split == self.split)


@dataclass(frozen=True)
class _HostRegex:
    regex: SafePattern

    def matches(self, host: str, split: tuple[str, int] | None) -> bool:
        return self.regex.fullmatch(host) is not None


@dataclass(frozen=True)
class Selector:
    """A parsed selector. Build it with :func:`parse_selector` (needed for groups).

    ``Selector("lab3 03")`` also works and parses ``text`` without groups.
    """

    text: str
    terms: tuple[_Term, ...] | None = field(default=None, repr=False)
    pattern: HostNamePattern = field(default_factory=HostNamePattern, repr=False)

    def __post_init__(self) -> None:
        if self.terms is None:
            terms = _parse_terms(self.text, _Groups({}), self.pattern, ())
            object.__setattr__(self, "terms", terms)

    def matches(self, host: str) -> bool:
        """True if ``host`` (a machine's name, any case) is selected."""
        host = host.strip()
        if not host or any(char.isspace() for char in host):
            return False
        split = self.pattern.split(host)
        return any(term.matches(host, split) for term in self.terms or ())


class _Groups:
    """Group definitions looked up case-insensitively, each expanded once per parse."""

    def __init__(self, groups: Mapping[str, Sequence[str]]) -> None:
        self._members = {name.lower(): members for name, members in groups.items()}
        self._names = sorted(groups)
        self._expanded: dict[str, tuple[_Term, ...]] = {}

    def expand(self, name: str, pattern: HostNamePattern, stack: tuple[str, ...]) -> tuple[_Term, ...]:
        key = name.lower()
        if key in self._expanded:
            return self._expanded[key]
        if key not in self._members:
            known = ", ".join("@" + known for known in self._names[:10])
            more = ", ..." if len(self._names) > 10 else ""
            hint = f"known groups are {known}{more}" if known else "no groups are defined"
            raise SelectorError(f"unknown group @{name}: {hint}")
        if key in stack:
            cycle = " -> ".join("@" + step for step in (*stack, key))
            raise SelectorError(f"group @{name} contains itself: {cycle}")
        members = self._members[key]
        # A lone string is one member, not a sequence of one-letter selectors.
        if isinstance(members, str):
            members = [members]
        terms: list[_Term] = []
        for member in members:
            if not isinstance(member, str):
                raise SelectorError(f"group @{name} has a member that is not text: {member!r}"[:200])
            terms.extend(_parse_terms(member, self, pattern, (*stack, key)))
        # Deduplicate so overlapping groups cannot blow up the term list.
        result = tuple(dict.fromkeys(terms))
        self._expanded[key] = result
        return result


def parse_selector(
    text: str,
    groups: Mapping[str, Sequence[str]] | None = None,
    pattern: HostNamePattern = HostNamePattern(),
) -> Selector:
    """Parse a selector such as ``lab3 01,05`` or ``@seniors``; raises :class:`SelectorError`."""
    if not isinstance(text, str):
        raise SelectorError(f"a selector is text, not {type(text).__name__}")
    _check_size(text)
    terms = _parse_terms(text, _Groups(groups or {}), pattern, ())
    return Selector(" ".join(text.split()), terms, pattern)


def split_line(line: str) -> tuple[str, str]:
    """Split ``lab3 03 render()`` into ``("lab3 03", "render()")``; raises :class:`SelectorError`."""
    if not isinstance(line, str):
        raise SelectorError(f"an instruction line is text, not {type(line).__name__}")
    _check_size(line)
    tokens = list(_TOKEN_RE.finditer(line))
    for index, token in enumerate(tokens):
        word = token.group()
        # re:(a|b)-01 may contain "name(" but is a selector, never a command.
        if word.lower().startswith(_REGEX_PREFIX) or not _COMMAND_START_RE.match(word):
            continue
        if index == 0:
            raise SelectorError(
                f"missing selector before command {_excerpt(word)}: "
                "start the line with one, e.g. * for every host or lab3 03"
            )
        if index > 2:
            raise SelectorError(
                f"selector {_excerpt(line[: token.start()].strip())} has {index} words: a selector is 1 or 2 words"
            )
        return line[: token.start()].strip(), line[token.start() :].strip()
    raise SelectorError(
        f"no command in line {_excerpt(line.strip())}: expected SELECTOR COMMAND, e.g. lab3 03 render()"
    )


def _check_size(text: str) -> None:
    # len() first: a huge string must not be encoded just to learn it is too big.
    if len(text) > MAX_LINE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
        raise SelectorError(f"line is longer than {MAX_LINE_BYTES} bytes: split it into several lines")


def _parse_terms(
    text: str, groups: _Groups, pattern: HostNamePattern, stack: tuple[str, ...]
) -> tuple[_Term, ...]:
    words = text.split()
    if len(words) == 1:
        return _parse_one_word(words[0], groups, pattern, stack)
    if len(words) == 2:
        return (_parse_lab_hosts(words[0], words[1], text),)
    if not words:
        raise SelectorError(f"empty selector: {_FORMS}")
    raise SelectorError(f"selector {_excerpt(text)} has {len(words)} words: a selector is 1 or 2 words ({_FORMS})")


def _parse_one_word(
    word: str, groups: _Groups, pattern: HostNamePattern, stack: tuple[str, ...]
) -> tuple[_Term, ...]:
    if word == "*":
        return (_AnyHost(),)
    if word.lower().startswith(_REGEX_PREFIX):
        return (_parse_regex(word[len(_REGEX_PREFIX) :]),)
    if word.startswith(_GROUP_PREFIX):
        name = word[len(_GROUP_PREFIX) :]
        if not _NAME_RE.fullmatch(name):
            raise SelectorError(f"bad group name {_excerpt(word)}: use @ followed by letters, digits, _ . or -")
        return groups.expand(name, pattern, stack)
    if not _NAME_RE.fullmatch(word):
        raise SelectorError(f"bad selector {_excerpt(word)}: {_FORMS}")
    return (_HostName(word.lower(), pattern.split(word)),)


def _parse_lab_hosts(lab: str, numbers: str, text: str) -> _LabHosts:
    if not _NAME_RE.fullmatch(lab):
        raise SelectorError(f"bad lab name {_excerpt(lab)} in selector {_excerpt(text)}: {_FORMS}")
    if numbers == "*":
        return _LabHosts(lab.lower(), None)
    if not _NUMBERS_RE.fullmatch(numbers):
        raise SelectorError(
            f"bad host numbers {_excerpt(numbers)} in selector {_excerpt(text)}: "
            f"use *, 03, 1-12 or 01,05,7-9 (at most {_MAX_NUMBER_DIGITS} digits each)"
        )
    ranges: list[tuple[int, int]] = []
    for item in numbers.split(","):
        low_text, _, high_text = item.partition("-")
        low = int(low_text)
        high = int(high_text) if high_text else low
        if low > high:
            raise SelectorError(f"empty range {item} in selector {_excerpt(text)}: write the smaller number first")
        ranges.append((low, high))
    return _LabHosts(lab.lower(), tuple(ranges))


def _parse_regex(source: str) -> _HostRegex:
    if not source:
        raise SelectorError("empty regular expression after re:; e.g. re:lab[12]-0[1-3]")
    # RE2 matches in linear time: a selector from the share cannot freeze an agent (Must-hold 4).
    try:
        return _HostRegex(compile_safe(source))
    except UnsafePattern as exc:
        raise SelectorError(f"invalid regular expression {_excerpt(source)}: {exc}") from None
