"""Host selectors: every form, the substring traps, groups, errors and line splitting."""

from __future__ import annotations

import pytest

from envy.protocol.selectors import (
    MAX_LINE_BYTES,
    HostNamePattern,
    Selector,
    SelectorError,
    parse_selector,
    split_line,
)

GROUPS = {
    "seniors": ["lab3 01,02", "lab4-07"],
    "Nightly": ["@seniors", "re:render-.*"],
    "empty": [],
    "single": "lab5-05",  # a lone string is one member
}

SELECTOR_TABLE = [
    # everything
    ("*", "lab3-03", True),
    ("*", "GNOMON-LAB9-99", True),
    ("*", "workstation", True),
    # one lab
    ("lab3 *", "lab3-03", True),
    ("lab3 *", "LAB3-12", True),
    ("lab3 *", "gnomon-lab3-01", True),
    ("lab3 *", "lab4-03", False),
    ("LAB3 *", "lab3-07", True),
    # one host of a lab, any spelling of the number
    ("lab3 03", "lab3-03", True),
    ("lab3 03", "LAB3-03", True),
    ("lab3 03", "lab3-3", True),
    ("lab3 3", "lab3-03", True),
    ("lab3 03", "GNOMON-LAB3-03", True),
    ("lab3 03", "lab3-03.local", True),
    ("lab3 03", "lab3-04", False),
    ("lab3 03", "lab4-03", False),
    ("Lab3 03", "lAb3-03", True),
    # ranges and lists
    ("lab3 1-12", "lab3-01", True),
    ("lab3 1-12", "lab3-12", True),
    ("lab3 1-12", "lab3-13", False),
    ("lab3 1-12", "lab3-00", False),
    ("lab3 01,05", "lab3-05", True),
    ("lab3 01,05", "lab3-01", True),
    ("lab3 01,05", "lab3-03", False),
    ("lab3 1-3,7", "lab3-02", True),
    ("lab3 1-3,7", "lab3-07", True),
    ("lab3 1-3,7", "lab3-05", False),
    # the substring traps: numbers and labs compare as wholes
    ("lab1 1", "lab1-10", False),
    ("lab1 1", "lab1-01", True),
    ("lab1 1", "lab1-1", True),
    ("lab1 *", "lab10-01", False),
    ("lab1 *", "lab1-10", True),
    ("lab1 1-2", "lab1-12", False),
    ("lab1", "lab10-01", False),
    ("lab1", "lab1-01", False),
    ("lab1", "LAB1", True),
    ("lab3-03", "lab3-030", False),
    ("lab3-03", "xlab3-03", False),
    ("lab3 03", "lab13-03", False),
    # exact host names
    ("lab3-03", "lab3-03", True),
    ("lab3-03", "LAB3-03", True),
    ("lab3-3", "lab3-03", True),
    ("lab3-03", "GNOMON-LAB3-03", True),
    ("lab3-03", "lab3-04", False),
    ("workstation", "WORKSTATION", True),
    ("workstation", "workstation2", False),
    # regular expressions: whole name, case-insensitive
    ("re:lab[12]-0[1-3]", "lab1-02", True),
    ("re:lab[12]-0[1-3]", "LAB2-03", True),
    ("re:lab[12]-0[1-3]", "lab1-04", False),
    ("re:lab[12]-0[1-3]", "lab3-01", False),
    ("re:lab[12]-0[1-3]", "xlab1-01", False),
    ("re:lab[12]-0[1-3]", "lab1-011", False),
    ("re:(lab1|lab2)-.*", "lab2-99", True),
    ("RE:lab1-.*", "lab1-99", True),
    # groups
    ("@seniors", "lab3-01", True),
    ("@seniors", "lab3-02", True),
    ("@seniors", "lab3-03", False),
    ("@seniors", "LAB4-07", True),
    ("@SENIORS", "lab4-7", True),
    ("@nightly", "lab3-01", True),
    ("@nightly", "RENDER-BOX", True),
    ("@nightly", "lab4-08", False),
    ("@empty", "lab3-01", False),
    ("@single", "lab5-05", True),
    # surrounding whitespace is not part of the selector or the host
    ("  lab3   03 ", " lab3-03\n", True),
]


@pytest.mark.parametrize(("selector", "host", "expected"), SELECTOR_TABLE)
def test_selector_table(selector: str, host: str, expected: bool) -> None:
    assert parse_selector(selector, GROUPS).matches(host) is expected


@pytest.mark.parametrize(
    ("host", "split"),
    [
        ("LAB3-03", ("lab3", 3)),
        ("GNOMON-LAB3-03", ("lab3", 3)),
        ("lab3-3", ("lab3", 3)),
        ("a-b-c-12", ("c", 12)),
        ("lab3-03.school.edu", ("lab3", 3)),
        ("workstation", None),
        ("lab303", None),
        ("lab3-", None),
        ("-03", None),
        ("lab 3-03", None),
    ],
)
def test_default_host_pattern_splits_lab_and_number(host: str, split: tuple[str, int] | None) -> None:
    assert HostNamePattern().split(host) == split


def test_custom_host_pattern() -> None:
    pattern = HostNamePattern(r"(?P<lab>[a-z]+)pc(?P<num>\d+)")
    assert pattern.split("ROOMApc7") == ("rooma", 7)
    selector = parse_selector("rooma 07", pattern=pattern)
    assert selector.matches("roomapc7")
    assert not selector.matches("roomapc70")


@pytest.mark.parametrize("regex", [r"(?P<lab>\w+)-\d+", "(", r"(?P<num>\d+)"])
def test_host_pattern_must_compile_and_name_lab_and_num(regex: str) -> None:
    with pytest.raises(SelectorError):
        HostNamePattern(regex)


def test_selector_built_directly_parses_its_text() -> None:
    assert Selector("lab3 03").matches("lab3-3")
    assert not Selector("lab3 03").matches("lab3-30")
    with pytest.raises(SelectorError):
        Selector("lab3 x")


def test_selector_text_is_normalised() -> None:
    assert parse_selector("  lab3\t 03 ").text == "lab3 03"


def test_blank_or_spaced_hosts_never_match() -> None:
    for selector in ("*", "re:.*", "lab3 *"):
        assert not parse_selector(selector).matches("")
        assert not parse_selector(selector).matches("lab3 03")


BAD_SELECTORS = [
    ("", "empty selector"),
    ("   ", "empty selector"),
    ("lab3 03 05", "1 or 2 words"),
    ("lab3 x", "bad host numbers"),
    ("lab3 1-", "bad host numbers"),
    ("lab3 1,,2", "bad host numbers"),
    ("lab3 01,", "bad host numbers"),
    ("lab3 -1", "bad host numbers"),
    ("lab3 9999999", "bad host numbers"),
    ("lab3 12-1", "empty range"),
    ("* *", "bad lab name"),
    ("@seniors 03", "bad lab name"),
    ("re:lab 03", "bad lab name"),
    ("lab~3 03", "bad lab name"),
    ("re:", "empty regular expression"),
    ("re:lab[", "invalid regular expression"),
    ("re:(", "invalid regular expression"),
    ("re:" + "(" * 3000 + ")" * 3000, "invalid regular expression"),
    ("re:a{99999999999}", "invalid regular expression"),
    ("@", "bad group name"),
    ("@nobody", "unknown group @nobody"),
    ("lab~3", "bad selector"),
    ("x" * (MAX_LINE_BYTES + 1), "longer than"),
]


@pytest.mark.parametrize(("selector", "fragment"), BAD_SELECTORS, ids=lambda value: repr(value)[:40])
def test_bad_selectors_raise_one_line_errors(selector: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(selector, GROUPS)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    assert len(message) < 300


def test_unknown_group_names_the_known_groups() -> None:
    with pytest.raises(SelectorError, match=r"known groups are .*@seniors"):
        parse_selector("@juniors", GROUPS)
    with pytest.raises(SelectorError, match="no groups are defined"):
        parse_selector("@juniors")


@pytest.mark.parametrize(
    "groups",
    [
        {"a": ["@a"]},
        {"a": ["@b"], "b": ["@a"]},
        {"a": ["lab1 *", "@b"], "b": ["@c"], "c": ["lab2 01", "@A"]},
    ],
)
def test_recursive_groups_are_rejected(groups: dict[str, list[str]]) -> None:
    with pytest.raises(SelectorError, match="contains itself"):
        parse_selector("@a", groups)


def test_diamond_groups_are_not_recursive_and_stay_small() -> None:
    # Each group includes the next twice: naive expansion would be 2**30 terms.
    groups = {f"g{i}": [f"@g{i + 1}", f"@g{i + 1}"] for i in range(30)}
    groups["g30"] = ["lab1 01"]
    selector = parse_selector("@g0", groups)
    assert selector.matches("lab1-01")
    assert selector.terms is not None and len(selector.terms) == 1


def test_bad_group_member_is_reported() -> None:
    with pytest.raises(SelectorError, match="bad host numbers"):
        parse_selector("@broken", {"broken": ["lab1 zz"]})
    with pytest.raises(SelectorError, match="not text"):
        parse_selector("@broken", {"broken": [3]})  # type: ignore[list-item]


SPLIT_LINES = [
    ("lab3 03 render()", ("lab3 03", "render()")),
    ("* print('hi')", ("*", "print('hi')")),
    ("lab3 * stop()", ("lab3 *", "stop()")),
    ("lab3 1-12 NV.bake('x')", ("lab3 1-12", "NV.bake('x')")),
    ("lab3 01,05 quit()", ("lab3 01,05", "quit()")),
    ("lab3-03 print(1)", ("lab3-03", "print(1)")),
    ("re:lab[12]-0[1-3] print(1)", ("re:lab[12]-0[1-3]", "print(1)")),
    ("re:(lab1|lab2)-0[1-3] print(1)", ("re:(lab1|lab2)-0[1-3]", "print(1)")),
    ("re:foo( print(1)", ("re:foo(", "print(1)")),
    ("@seniors reload()", ("@seniors", "reload()")),
    ("  lab3   03   IO.show( 'a b' )  \n", ("lab3   03", "IO.show( 'a b' )")),
    ("* print('x y(z)', 2)", ("*", "print('x y(z)', 2)")),
    ("* _private()", ("*", "_private()")),
]


@pytest.mark.parametrize(("line", "parts"), SPLIT_LINES)
def test_split_line(line: str, parts: tuple[str, str]) -> None:
    assert split_line(line) == parts


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("", "no command"),
        ("lab3 03", "no command"),
        ("lab3 03 render", "no command"),
        ("lab3 03 render ()", "no command"),
        ("lab3 03 nv.bake()", "no command"),
        ("print('hi')", "missing selector"),
        ("lab3 03 05 render()", "1 or 2 words"),
        ("lab3 03 " + "x" * MAX_LINE_BYTES + "()", "longer than"),
        ("* print('" + "é" * (MAX_LINE_BYTES // 2) + "')", "longer than"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_split_line_errors(line: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        split_line(line)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)
