"""Syntax colours for the shell: selector, function name, strings, numbers, shell commands.

Colouring is a hint while typing, not a check: the validator decides. So the
lexer never raises and copes with half-typed lines (an unclosed string, no
command yet).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.lexers import Lexer
from prompt_toolkit.styles import Style

STYLE = Style.from_dict(
    {
        "prompt": "#00aa88 bold",
        "selector": "#00aa88 bold",
        "namespace": "#aa55ff",
        "function": "#3388ff bold",
        "string": "#cc8800",
        "number": "#dd5555",
        "constant": "#aa55ff",
        "argname": "italic",
        "bad": "underline",
        "shell-command": "#00aa00 bold",
        "argument": "",
        "bottom-toolbar": "#aaaaaa bg:#222222",
    }
)

# Where the command starts: the first word that looks like a call (selectors.split_line's rule).
_COMMAND_START = re.compile(r"(?<!\S)(?:(?:NV|IO)\.)?[A-Za-z_]\w*\(")
_TOKEN = re.compile(
    r"""
    (?P<string>[rRbBuUfF]{0,2}(?:'''.*?(?:'''|$)|\"\"\".*?(?:\"\"\"|$)|'(?:\\.|[^'\\])*(?:'|$)|"(?:\\.|[^"\\])*(?:"|$)))
    |(?P<number>(?<![\w.])(?:0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?[jJ]?))
    |(?P<name>[A-Za-z_]\w*)
    |(?P<space>\s+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_CONSTANTS = {"True", "False", "None"}


def lex_line(text: str, shell_commands: Collection[str] = ()) -> StyleAndTextTuples:
    """Split one line into (style, text) pieces."""
    stripped = text.strip()
    first = stripped.split(maxsplit=1)[0] if stripped else ""
    if "(" not in text and first.lower() in shell_commands:
        start = text.index(first)
        end = start + len(first)
        return [("", text[:start]), ("class:shell-command", first), ("class:argument", text[end:])]
    match = _COMMAND_START.search(text)
    if match is None:
        return [("class:selector", text)]
    return [("class:selector", text[: match.start()]), *_lex_command(text[match.start():])]


def _lex_command(text: str) -> StyleAndTextTuples:
    tokens = [(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(text)]
    pieces: StyleAndTextTuples = []
    seen_call = False  # the called name is styled once; names after it are arguments
    for index, (kind, value) in enumerate(tokens):
        following = _next_significant(tokens, index)
        if kind == "name" and not seen_call:
            if value in ("NV", "IO") and following == ".":
                style = "class:namespace"
            else:
                style, seen_call = "class:function", True
        elif kind == "name":
            style = "class:constant" if value in _CONSTANTS else "class:argname" if following == "=" else "class:bad"
        elif kind in ("string", "number"):
            style = f"class:{kind}"
        else:
            style = ""
        pieces.append((style, value))
    return pieces


def _next_significant(tokens: list[tuple[str, str]], index: int) -> str:
    for kind, value in tokens[index + 1:]:
        if kind != "space":
            return value
    return ""


class EnvyLexer(Lexer):
    def __init__(self, shell_commands: Collection[str] | Callable[[], Collection[str]] = ()) -> None:
        self._shell_commands = shell_commands

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        commands = self._shell_commands() if callable(self._shell_commands) else self._shell_commands
        lines = document.lines

        def get_line(number: int) -> StyleAndTextTuples:
            return lex_line(lines[number], commands) if number < len(lines) else []

        return get_line
