"""Property tests: the parsers return a value or raise their own error, quickly, for any input."""

from __future__ import annotations

import io
import keyword
import math
import tokenize
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envy.protocol.commands import MAX_DEPTH, CommandError, parse_command
from envy.protocol.selectors import SelectorError, parse_selector, split_line

BUILTINS = frozenset({"print", "render", "stop"})
HOSTS = ("lab3-03", "LAB3-3", "GNOMON-LAB3-03", "lab1-10", "lab10-01", "workstation", "")
GROUPS = {"a": ["lab1 *", "@b"], "b": ["re:lab[12]-.*"], "loop": ["@loop"]}

# A deadline turns a hang or a pathological slow path into a failure.
FAST = settings(deadline=500, max_examples=300, suppress_health_check=[HealthCheck.too_slow])

# Fragments that steer random text towards the interesting corners of both grammars.
COMMAND_PIECES = st.sampled_from(
    [
        "print", "render", "NV.", "IO.", "__class__", "_x", "(", ")", "[", "]", "{", "}", ",", ":",
        "'", '"', "'''", "f'", "b'", "r'", "\\", "#", "\n", " ", "-", "+", "*", "**", "=", "1", "2.5",
        "1e999", "3j", "True", "None", "lambda", "for", "in", "x", ".", "...", ":=", "\x00", "é",
    ]
)
SELECTOR_PIECES = st.sampled_from(
    ["*", "lab3", "LAB1", " ", "\t", "03", "1-12", ",", "-", "re:", "@", "a", "b", "loop", "[", "(", ")",
     "|", "+", "{99}", "~", "é", "print(", "NV.", "'", "\n"]
)


def _pieces(pieces: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(pieces, max_size=30).map("".join)


@FAST
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), _pieces(COMMAND_PIECES)))
def test_parse_command_returns_a_call_or_raises_command_error(text: str | bytes) -> None:
    try:
        call = parse_command(text, BUILTINS)
    except CommandError as exc:
        assert "\n" not in str(exc)
    else:
        assert call.qualname.split(".")[-1] == call.name
        assert not call.name.startswith("_")


@FAST
@given(st.one_of(st.text(max_size=200), _pieces(SELECTOR_PIECES)))
def test_parse_selector_returns_a_selector_or_raises_selector_error(text: str) -> None:
    try:
        selector = parse_selector(text, GROUPS)
    except SelectorError as exc:
        assert "\n" not in str(exc)
    else:
        for host in HOSTS:
            assert isinstance(selector.matches(host), bool)


@FAST
@given(st.one_of(st.text(max_size=200), _pieces(SELECTOR_PIECES), _pieces(COMMAND_PIECES)))
def test_split_line_returns_two_parts_or_raises_selector_error(line: str) -> None:
    try:
        selector, command = split_line(line)
    except SelectorError as exc:
        assert "\n" not in str(exc)
        return
    assert selector and command
    assert 1 <= len(selector.split()) <= 2
    # Whatever split_line hands on, the next parsers still only raise their own errors.
    try:
        parse_selector(selector, GROUPS)
    except SelectorError:
        pass
    try:
        parse_command(command, BUILTINS)
    except CommandError:
        pass


@settings(deadline=500, max_examples=200)
@given(
    lab=st.integers(0, 120),
    number=st.integers(0, 120),
    wanted_lab=st.integers(0, 120),
    wanted=st.integers(0, 120),
    width=st.integers(1, 3),
    prefix=st.sampled_from(["", "GNOMON-", "gnomon-x-"]),
)
def test_lab_and_number_selectors_compare_whole_numbers(
    lab: int, number: int, wanted_lab: int, wanted: int, width: int, prefix: str
) -> None:
    host = f"{prefix}LAB{lab}-{number:0{width}d}"
    assert parse_selector(f"lab{wanted_lab} {wanted}").matches(host) is (lab == wanted_lab and number == wanted)
    assert parse_selector(f"lab{wanted_lab} *").matches(host) is (lab == wanted_lab)


# Literal values as a user would type them; repr() of each must read back identically.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=1e12),
    st.text(max_size=20),
    st.binary(max_size=20),
)
HASHABLE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8), st.binary(max_size=8)),
    lambda inner: st.lists(inner, max_size=3).map(tuple),
    max_leaves=6,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.sets(HASHABLE, min_size=1, max_size=4),  # set() is a call, so no empty sets
        st.dictionaries(HASHABLE, inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(deadline=500, max_examples=300)
@given(VALUES)
def test_literal_values_round_trip(value: Any) -> None:
    source = f"NV.f({value!r})"
    if _bracket_depth(source) > MAX_DEPTH:
        try:
            parse_command(source, BUILTINS)
        except CommandError:
            return
        raise AssertionError(f"accepted nesting deeper than {MAX_DEPTH}: {source}")
    call = parse_command(source, BUILTINS)
    assert call.qualname == "NV.f"
    assert len(call.args) == 1
    assert _same(call.args[0], value)


@settings(deadline=500, max_examples=100)
@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True), VALUES, max_size=4))
def test_keyword_values_round_trip(kwargs: dict[str, Any]) -> None:
    kwargs = {name: value for name, value in kwargs.items() if not keyword.iskeyword(name)}
    source = "render(" + ", ".join(f"{name}={value!r}" for name, value in kwargs.items()) + ")"
    try:
        call = parse_command(source, BUILTINS)
    except CommandError:
        assert _bracket_depth(source) > MAX_DEPTH
        return
    assert set(call.kwargs) == set(kwargs)
    assert all(_same(call.kwargs[name], value) for name, value in kwargs.items())


def _bracket_depth(source: str) -> int:
    """Nesting depth measured by Python's own tokenizer, independently of the parser under test."""
    depth = deepest = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
    return deepest


def _same(got: Any, expected: Any) -> bool:
    """Equal in value *and* type (True is not 1), with the sign of zero kept."""
    if type(got) is not type(expected):
        return False
    if isinstance(expected, float):
        return got == expected and math.copysign(1, got) == math.copysign(1, expected)
    if isinstance(expected, complex):
        # repr() of a complex cannot carry the sign of a zero part (Python's own eval loses it too).
        return bool(got == expected)
    if isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(_same(a, b) for a, b in zip(got, expected, strict=True))
    if isinstance(expected, dict):
        return list(got) == list(expected) and all(_same(got[key], expected[key]) for key in expected)
    return bool(got == expected)
