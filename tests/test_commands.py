"""Commands are parsed into literal values and rejected otherwise; nothing ever runs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from envy.protocol.commands import MAX_COMMAND_CHARS, MAX_DEPTH, Call, CommandError, parse_command

BUILTINS = frozenset({"print", "render", "stop", "quit", "reload"})


def _reject(text: str | bytes, **options: Any) -> str:
    """Assert ``text`` is refused with a one-line CommandError and return the message."""
    with pytest.raises(CommandError) as caught:
        parse_command(text, BUILTINS, **options)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    assert len(message) < 400
    return message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os').system('x')", "cannot call"),
        ("open('/etc/passwd')", "unknown command 'open'"),
        ("NV.__class__", "not a call"),
        ("NV.__class__()", "private"),
        ("NV._helper()", "private"),
        ("IO.__init__()", "private"),
        ("(lambda: 1)()", "cannot call"),
        ("print(*[1])", "*unpacking"),
        ("print(**{'a': 1})", "**unpacking"),
        ("'(' * 10000", "not a call"),
        ("(" * 10000, "longer than"),
        ("(" * 100, "nested deeper"),
        ("print(" + "[" * MAX_DEPTH + "]" * MAX_DEPTH + ")", "nested deeper"),
        ("print(# '\n" + "[" * 40 + "]" * 40 + ")", "nested deeper"),
        ("print(f'{" + "(" * 40 + "1" + ")" * 40 + "}')", "nested deeper"),
        ("print('x' * " + "1" * 2 + ")", "operators"),
        ("x" * 1_000_000, "longer than"),
        ("print(f'{x}')", "f-strings"),
        ("print(1+1)", "operators"),
        ("print(--1)", "operators"),
        ("print(-True)", "operators"),
        ("print(not 1)", "operators"),
        ("print(1 < 2)", "comparisons"),
        ("NV.a.b()", "cannot call"),
        ("print(x)", "names"),
        ("print(True.real)", "attribute"),
        ("print(print())", "calls inside arguments"),
        ("print([i for i in ()])", "comprehensions"),
        ("print((1, 2)[0])", "subscripts"),
        ("print(1 if 1 else 2)", "conditional"),
        ("print((y := 1))", "assignments"),
        ("print(...)", "not allowed as a value"),
        ("print({[1]: 2})", "dict keys"),
        ("print({[1], 2})", "set items"),
        ("print({**{}})", "**unpacking"),
        ("print(a=1, a=2)", "given twice"),
        ("print(1) + 1", "not a call"),
        ("print", "not a call"),
        ("1", "not a call"),
        ("print(1); print(2)", "cannot read"),
        ("import os", "cannot read"),
        ("print(", "cannot read"),
        ("print('unterminated)", "cannot read"),
        ("print(" + "-" * 5000 + "1)", "cannot read"),
        ("print(" + "9" * 5000 + ")", "cannot read"),
        ("", "empty command"),
        ("   ", "empty command"),
        ("print('\x00')", "NUL"),
        ("getattr(NV, '__class__')()", "cannot call"),
        ("getattr(NV, '__class__')", "unknown command 'getattr'"),
        ("nv.bake()", "cannot call"),
        ("os.system('x')", "cannot call"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_rejected_commands(text: str, fragment: str) -> None:
    assert fragment in _reject(text)


@pytest.mark.parametrize("data", [b"\xff\xfeprint(1)", b"print('\xe9')", b"print('\xc3')"])
def test_non_utf8_bytes_are_rejected(data: bytes) -> None:
    assert "UTF-8" in _reject(data)


def test_huge_bytes_are_rejected_before_decoding() -> None:
    assert "longer than" in _reject(b"\xff" * 1_000_000)


def test_rejected_commands_run_nothing(tmp_path: Path) -> None:
    # A sentinel that only an executed command could create.
    sentinel = tmp_path / "ran"
    attacks = [
        f"__import__('os').system('touch {sentinel}')",
        f"print(__import__('os').system('touch {sentinel}'))",
        f"print(open('{sentinel}', 'w'))",
        f"NV.run(exec(\"open('{sentinel}', 'w')\"))",
        f"print([open('{sentinel}', 'w') for _ in 'x'])",
        f"(lambda: open('{sentinel}', 'w'))()",
        f"render(f\"{{open('{sentinel}', 'w')}}\")",
    ]
    for attack in attacks:
        _reject(attack)
    assert not sentinel.exists()


def test_io_is_refused_where_it_is_not_available() -> None:
    assert "only in the Envy IO shell" in _reject("IO.show()", allow_io=False)
    assert parse_command("IO.show()", BUILTINS).qualname == "IO.show"


def test_unknown_user_functions_list_some_known_ones() -> None:
    message = _reject("NV.bkae()", nv_names=["bake", "cache", "flip"])
    assert "NV.bake" in message and "NV.flip" in message
    many = [f"f{i:02d}" for i in range(50)]
    message = _reject("IO.nope()", io_names=many)
    assert "IO.f00" in message and "IO.f49" not in message and "..." in message


def test_unknown_builtin_lists_the_known_commands() -> None:
    message = _reject("rendr('x')")
    assert "print" in message and "render" in message


def test_long_source_is_truncated_in_messages() -> None:
    message = _reject("print(" + "x" * 5000 + ")")
    assert "x" * 100 not in message


def _call(text: str | bytes, **options: Any) -> Call:
    return parse_command(text, BUILTINS, **options)


def test_accept_print() -> None:
    call = _call("print('hello world')")
    assert call == Call(None, "print", ("hello world",), {}, "print('hello world')")
    assert call.qualname == "print"


def test_accept_nv_call_with_keyword() -> None:
    call = _call("NV.doSomething(1, name='x')")
    assert (call.namespace, call.name, call.qualname) == ("NV", "doSomething", "NV.doSomething")
    assert call.args == (1,)
    assert dict(call.kwargs) == {"name": "x"}


def test_accept_no_arguments() -> None:
    call = _call("render()")
    assert (call.qualname, call.args, dict(call.kwargs)) == ("render", (), {})


def test_accept_path_argument() -> None:
    assert _call("render('Z:/proj/shot010')").args == ("Z:/proj/shot010",)


def test_accept_nested_literals() -> None:
    call = _call("NV.bake('hero', frames=10, opts={'a': [1, 2.5, None, True]})")
    assert call.qualname == "NV.bake"
    assert call.args == ("hero",)
    assert dict(call.kwargs) == {"frames": 10, "opts": {"a": [1, 2.5, None, True]}}
    assert call.kwargs["opts"]["a"][3] is True


def test_accept_negative_number() -> None:
    assert _call("print(-1)").args == (-1,)


def test_accept_every_literal_kind() -> None:
    call = _call(
        "print('s', b'b', 7, -2.5, +3, 2j, (1-2j), -1.5+0j, True, False, None, (1,), [], {1, 'a'}, {(1, 2): {}})"
    )
    assert call.args == (
        "s",
        b"b",
        7,
        -2.5,
        3,
        2j,
        1 - 2j,
        -1.5 + 0j,
        True,
        False,
        None,
        (1,),
        [],
        {1, "a"},
        {(1, 2): {}},
    )
    assert isinstance(call.args[8], bool)
    assert math.copysign(1, _call("print(-0.0)").args[0]) == -1


def test_accept_bytes_source_and_surrounding_space() -> None:
    call = _call("  print('é')  \n".encode())
    assert call.args == ("é",)
    assert call.text == "print('é')"


def test_accept_comment_and_multiline_call() -> None:
    assert _call("render(\n  'a',  # the shot\n  frames=2,\n)").kwargs["frames"] == 2


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert _call("print('" + "(" * 100 + "', \"[[[\", '''{{{''')").args[0] == "(" * 100


def test_max_depth_is_allowed() -> None:
    inner = MAX_DEPTH - 1  # the call's own parentheses are the first level
    assert _call("print(" + "[" * inner + "]" * inner + ")").args == (_nested(inner),)


def test_length_limit_is_exact() -> None:
    body = "x" * (MAX_COMMAND_CHARS - len("print('')"))
    assert _call(f"print('{body}')").args == (body,)
    _reject(f"print('{body}x')")


def test_known_names_are_enforced_only_when_given() -> None:
    assert _call("NV.anything()").name == "anything"
    assert _call("NV.bake()", nv_names={"bake"}).name == "bake"
    _reject("NV.anything()", nv_names={"bake"})


def test_kwargs_are_read_only() -> None:
    with pytest.raises(TypeError):
        _call("render(a=1)").kwargs["a"] = 2  # type: ignore[index]


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value
