"""Commands: the ``COMMAND`` half of an instruction line, parsed and never evaluated.

A command looks like Python (``render('Z:/proj/shot010')``,
``NV.bake('hero', frames=10)``) but is only ever *read*: it is parsed with
``ast.parse(..., mode="eval")`` and accepted only when it is one call of a
registered name whose arguments are literal values. The values are built here by
walking the tree; nothing from the line is executed, and neither ``eval`` nor
``ast.literal_eval`` is called (the latter has no limits on size or depth).
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["MAX_COMMAND_CHARS", "MAX_DEPTH", "Call", "CommandError", "parse_command"]

# A real command is a call with a handful of arguments; a few KiB leaves room
# for long paths and option dicts while bounding parse time and memory.
MAX_COMMAND_CHARS = 8192
# CPython's parser and our own tree walk recurse once per bracket level; a small
# fixed bound keeps both far from the C and Python stack limits (the call's own
# parentheses count as one level).
MAX_DEPTH = 16

_NAMESPACES = ("NV", "IO")
_CONSTANT_TYPES = (str, bytes, int, float, complex, bool, type(None))
_EXCERPT_CHARS = 60
_KNOWN_NAMES_SHOWN = 8
_ALLOWED = "a call of a known command with literal arguments, e.g. render('Z:/shot') or NV.bake('hero', frames=10)"
_ALLOWED_VALUES = "use strings, numbers, True/False/None, and lists, tuples, sets or dicts of them"

# Friendly names for the constructs people actually try, so the error says what it saw.
_NODE_NAMES: dict[type[ast.AST], str] = {
    ast.Name: "names",
    ast.Attribute: "attribute access",
    ast.Call: "calls inside arguments",
    ast.Lambda: "lambdas",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.BinOp: "operators",
    ast.BoolOp: "operators",
    ast.Compare: "comparisons",
    ast.UnaryOp: "operators",
    ast.IfExp: "conditional expressions",
    ast.Subscript: "subscripts",
    ast.Starred: "*unpacking",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.NamedExpr: "assignments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


class CommandError(ValueError):
    """A command that is not allowed or cannot be read (message is one line)."""

    def __init__(self, message: str) -> None:
        # Messages are shown as one line in the shell and in logs.
        super().__init__(" ".join(message.splitlines()))


@dataclass(frozen=True)
class Call:
    """One accepted command: which function, and the literal values to pass it."""

    namespace: str | None  # None for a built-in, "NV" (agent user module) or "IO" (shell user module)
    name: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    text: str

    @property
    def qualname(self) -> str:
        """``print`` or ``NV.bake``: the name as the user wrote it."""
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


def parse_command(
    text: str | bytes,
    builtins: Collection[str],
    nv_names: Collection[str] | None = None,
    io_names: Collection[str] | None = None,
    allow_io: bool = True,
) -> Call:
    """Parse ``text`` into a :class:`Call` or raise :class:`CommandError`; never runs anything.

    ``builtins`` are the bare names allowed (``print``, ``render``...).
    ``nv_names`` / ``io_names`` are the public functions of the user's NV / IO
    modules; None accepts any public name (the module is checked later).
    ``allow_io=False`` rejects ``IO.x`` (the agents have no IO module).
    """
    source = _checked_source(text)
    try:
        # The parser warns on stderr about odd literals ("1if", "\\p"); the
        # answer to the user is our error or the call, not a stray warning line.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning, and DeprecationWarning before 3.12
            tree = ast.parse(source, mode="eval")
    # MemoryError/RecursionError: CPython's own guards against long operator chains.
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as exc:
        if isinstance(exc, (MemoryError, RecursionError)):
            reason = "too deeply nested or too complex"
        else:
            reason = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
            # Some parser messages run on with advice that does not apply here.
            reason = reason if len(reason) <= 80 else reason[:80] + "..."
        raise CommandError(f"cannot read {_excerpt(source)}: {reason}; expected {_ALLOWED}") from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise CommandError(f"not a call: {_excerpt(source)}; expected {_ALLOWED}")
    namespace, name = _function(call.func, source, builtins, nv_names, io_names, allow_io)
    args = tuple(_argument(arg, source) for arg in call.args)
    kwargs = _keywords(call.keywords, source)
    return Call(namespace, name, args, MappingProxyType(kwargs), source)


def _checked_source(text: str | bytes) -> str:
    """Decode and run the cheap checks that must happen before the parser sees the text."""
    if isinstance(text, (bytes, bytearray)):
        # UTF-8 needs at most 4 bytes a character: reject hopeless input undecoded.
        if len(text) > 4 * MAX_COMMAND_CHARS:
            raise CommandError(f"command is longer than {MAX_COMMAND_CHARS} characters")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError(f"command is not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    if not isinstance(text, str):
        raise CommandError(f"a command is text, not {type(text).__name__}")
    if len(text) > MAX_COMMAND_CHARS:
        raise CommandError(f"command is longer than {MAX_COMMAND_CHARS} characters")
    if "\x00" in text:
        raise CommandError("command contains a NUL character")
    source = text.strip()
    if not source:
        raise CommandError(f"empty command; expected {_ALLOWED}")
    if _max_bracket_depth(source) > MAX_DEPTH:
        raise CommandError(f"brackets nested deeper than {MAX_DEPTH} levels in {_excerpt(source)}")
    return source


def _max_bracket_depth(source: str) -> int:
    """Deepest bracket nesting, skipping string literals and comments.

    It may overcount (brackets inside f-strings are counted) but never
    undercounts what the parser will nest, which is what makes it a guard.
    """
    depth = deepest = 0
    index, end = 0, len(source)
    while index < end:
        char = source[index]
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == "#":
            newline = source.find("\n", index)
            index = end if newline < 0 else newline
            continue
        elif char in "'\"" and not _is_fstring(source, index):
            index = _skip_string(source, index)
            continue
        index += 1
    return deepest


def _is_fstring(source: str, quote: int) -> bool:
    # The string prefix is the run of letters right before the quote (rb, f, Rf...).
    start = quote
    while start > 0 and (source[start - 1].isalnum() or source[start - 1] == "_"):
        start -= 1
    return "f" in source[start:quote].lower()


def _skip_string(source: str, quote: int) -> int:
    """Index just past the string literal starting at ``quote``."""
    delimiter = source[quote] * 3 if source.startswith(source[quote] * 3, quote) else source[quote]
    index = quote + len(delimiter)
    while index < len(source):
        if source[index] == "\\":
            index += 2
        elif source.startswith(delimiter, index):
            return index + len(delimiter)
        elif source[index] == "\n" and len(delimiter) == 1:
            # Unterminated: the parser stops here, so resume counting here.
            return index
        else:
            index += 1
    return len(source)


def _function(
    func: ast.expr,
    source: str,
    builtins: Collection[str],
    nv_names: Collection[str] | None,
    io_names: Collection[str] | None,
    allow_io: bool,
) -> tuple[str | None, str]:
    """The (namespace, name) being called, if it is one we allow."""
    if isinstance(func, ast.Name):
        if func.id not in builtins:
            raise CommandError(
                f"unknown command {func.id!r}: known commands are {_known(builtins)}, or NV.<name>"
                + (" / IO.<name>" if allow_io else "")
            )
        return None, func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in _NAMESPACES:
        namespace, name = func.value.id, func.attr
        if name.startswith("_"):
            raise CommandError(f"{namespace}.{name} is private: only public functions (no leading _) can be called")
        if namespace == "IO" and not allow_io:
            raise CommandError(f"IO.{name} is not available here: IO functions run only in the Envy IO shell")
        names = nv_names if namespace == "NV" else io_names
        if names is not None and name not in names:
            raise CommandError(
                f"unknown function {namespace}.{name}: known {namespace} functions are {_known(names, namespace + '.')}"
            )
        return namespace, name
    raise CommandError(
        f"cannot call {_excerpt(_segment(source, func))}: only a command name or NV.<name>"
        + (" / IO.<name>" if allow_io else "")
        + " can be called"
    )


def _keywords(keywords: list[ast.keyword], source: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for keyword in keywords:
        if keyword.arg is None:
            raise CommandError(f"**unpacking is not allowed in {_excerpt(source)}; write name=value")
        # The parser accepts repeated keywords; only compiling would catch them.
        if keyword.arg in kwargs:
            raise CommandError(f"keyword argument {keyword.arg!r} given twice")
        kwargs[keyword.arg] = _argument(keyword.value, source)
    return kwargs


def _argument(node: ast.expr, source: str) -> Any:
    return _literal(node, source, depth=1)


def _literal(node: ast.expr, source: str, depth: int) -> Any:
    """Build the Python value of a literal node; anything else is a CommandError."""
    # The pre-scan already bounds nesting; this keeps the walk safe on its own.
    if depth > MAX_DEPTH:
        raise CommandError(f"values nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, _CONSTANT_TYPES):
            raise CommandError(f"{_excerpt(_segment(source, node))} is not allowed as a value; {_ALLOWED_VALUES}")
        return node.value
    if isinstance(node, ast.UnaryOp):
        return _signed_number(node, source)
    if isinstance(node, ast.BinOp):
        return _complex_number(node, source)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_literal(item, source, depth + 1) for item in node.elts]
        if isinstance(node, ast.List):
            return items
        if isinstance(node, ast.Tuple):
            return tuple(items)
        return _hashable(lambda: set(items), node, source)
    if isinstance(node, ast.Dict):
        return _dict(node, source, depth)
    raise CommandError(_not_allowed(node, source))


def _dict(node: ast.Dict, source: str, depth: int) -> dict[Any, Any]:
    keys: list[Any] = []
    for key in node.keys:
        if key is None:
            raise CommandError(f"**unpacking is not allowed in {_excerpt(_segment(source, node))}")
        keys.append(_literal(key, source, depth + 1))
    values = [_literal(value, source, depth + 1) for value in node.values]
    return _hashable(lambda: dict(zip(keys, values, strict=True)), node, source)


def _hashable(build: Callable[[], Any], node: ast.expr, source: str) -> Any:
    try:
        return build()
    except TypeError:
        raise CommandError(
            f"set items and dict keys must be strings, numbers or tuples, in {_excerpt(_segment(source, node))}"
        ) from None


def _signed_number(node: ast.UnaryOp, source: str) -> int | float | complex:
    """``-1`` and ``+2.5``: a sign directly on a number, nothing else."""
    operand = node.operand
    if (
        isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(operand, ast.Constant)
        and isinstance(operand.value, (int, float, complex))
        and not isinstance(operand.value, bool)
    ):
        return -operand.value if isinstance(node.op, ast.USub) else +operand.value
    raise CommandError(_not_allowed(node, source))


def _complex_number(node: ast.BinOp, source: str) -> complex:
    """``1+2j`` / ``-1-2j``: Python has no complex literal with a real part, so repr() writes these.

    Only a real number plus or minus an imaginary literal is accepted, as in
    ``ast.literal_eval``; every other operator is rejected.
    """
    right = node.right
    if (
        isinstance(node.op, (ast.Add, ast.Sub))
        and isinstance(right, ast.Constant)
        and isinstance(right.value, complex)
        and isinstance(node.left, (ast.Constant, ast.UnaryOp))
    ):
        left = node.left.value if isinstance(node.left, ast.Constant) else _signed_number(node.left, source)
        if isinstance(left, (int, float)) and not isinstance(left, bool):
            return left + right.value if isinstance(node.op, ast.Add) else left - right.value
    raise CommandError(_not_allowed(node, source))


def _not_allowed(node: ast.AST, source: str) -> str:
    what = _NODE_NAMES.get(type(node), type(node).__name__)
    # A bare word is almost always text that lost its quotes.
    hint = " (put text in quotes)" if isinstance(node, ast.Name) else ""
    return f"{what} not allowed in arguments: {_excerpt(_segment(source, node))}{hint}; {_ALLOWED_VALUES}"


def _segment(source: str, node: ast.AST) -> str:
    return ast.get_source_segment(source, node) or source


def _known(names: Collection[str], prefix: str = "") -> str:
    shown = sorted(names)[:_KNOWN_NAMES_SHOWN]
    if not shown:
        return "(none)"
    more = ", ..." if len(names) > _KNOWN_NAMES_SHOWN else ""
    return ", ".join(prefix + name for name in shown) + more


def _excerpt(text: str) -> str:
    """Quote user text for an error message: repr escapes newlines, long text is cut."""
    if len(text) > _EXCERPT_CHARS:
        return repr(text[:_EXCERPT_CHARS]) + "..."
    return repr(text)


# The agent's built-ins (envy/agent/commands.py runs them; the shell and the
# lockdown policy need to know them too, so they live with the language).
AGENT_BUILTINS = ("print", "stop", "quit", "restart", "reload", "render")


def parse_agent_command(text: str) -> Call:
    """Parse a command for an agent. ``IO.*`` belongs to the shell and is refused here."""
    return parse_command(text, builtins=AGENT_BUILTINS, allow_io=False)
