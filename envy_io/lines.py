"""Checking what a person typed, before anything is written.

Three kinds of line reach Envy IO:

* ``SELECTOR COMMAND`` (``lab3 03 render()``): checked here, then sent to agents;
* ``IO.name(...)``: one of the user's IO functions, run in the shell itself;
* a shell command (``status``, ``logs lab3-03``, ``help``...): a known word and no ``(``.

Commands are parsed, never evaluated (ENGINEERING §2): the real work is done by
envy.protocol.selectors and envy.protocol.commands; this module adds what
only the shell knows (the farm's groups and host pattern, the user's function
names) and turns every failure into a one-line ``UsageError``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from envy.agent.commands import AGENT_BUILTINS
from envy.protocol.commands import Call, CommandError, parse_command
from envy.protocol.selectors import HostNamePattern, Selector, SelectorError, parse_selector, split_line
from envy_io.errors import UsageError
from envy_io.suggest import add_hint, did_you_mean

IO_PREFIX = "IO."
# Characters that would break the one-command-per-line instruction file.
_LINE_BREAKS = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


@dataclass(frozen=True)
class InstructionLine:
    """A checked ``SELECTOR COMMAND`` line, ready for the instruction file."""

    selector: Selector
    call: Call

    @property
    def text(self) -> str:
        return f"{self.selector.text} {self.call.text}"


@dataclass(frozen=True)
class IoCallLine:
    call: Call


@dataclass(frozen=True)
class ShellCommandLine:
    name: str
    text: str  # the whole line, for the command's own argument parser


ShellLine = InstructionLine | IoCallLine | ShellCommandLine


class LineChecker:
    """Checks lines against the farm's settings and the user's functions.

    ``nv_names`` / ``io_names`` are callables so an edited user file is picked up
    on the next line; ``nv_names`` returning None accepts any public NV name.
    """

    def __init__(
        self,
        groups: Mapping[str, Sequence[str]],
        host_pattern: HostNamePattern,
        nv_names: Callable[[], Collection[str] | None],
        io_names: Callable[[], Collection[str]] = lambda: (),
        io_error: Callable[[], str | None] = lambda: None,
        builtins: Collection[str] = AGENT_BUILTINS,
    ) -> None:
        self.groups = groups
        self.host_pattern = host_pattern
        self.nv_names = nv_names
        self.io_names = io_names
        self.io_error = io_error
        self.builtins = builtins

    def instruction(self, line: str) -> InstructionLine:
        """Check a line for the agents; raises UsageError saying what is wrong and what is allowed."""
        text = _one_line(line)
        if text.startswith(IO_PREFIX):
            name = text[len(IO_PREFIX):].split("(")[0].strip() or "name"
            raise UsageError(
                f"IO.{name} is an IO function: IO functions run in the Envy IO shell "
                "(start envy-io and type it there), agents run built-ins and NV.* functions"
            )
        try:
            selector_text, command = split_line(text)
            selector = parse_selector(selector_text, self.groups, self.host_pattern)
            if command.startswith(IO_PREFIX):
                name = command[len(IO_PREFIX):].split("(")[0].strip() or "name"
                raise UsageError(
                    f"IO.{name} is an IO function: IO functions run in the Envy IO shell, type IO.{name}(...) "
                    "there without a selector; agents run built-ins and NV.* functions"
                )
        except SelectorError as exc:
            raise UsageError(str(exc)) from None
        nv_names = self.nv_names()
        try:
            call = parse_command(command, self.builtins, nv_names=nv_names, allow_io=False)
        except CommandError as exc:
            raise UsageError(add_hint(str(exc), self._function_hint(command, nv_names))) from None
        return InstructionLine(selector, call)

    def _function_hint(self, command: str, nv_names: Collection[str] | None) -> str:
        """``did you mean print(...)?`` for a misspelt built-in or NV function, else ''."""
        name = command.split("(", 1)[0].strip()
        if name.startswith("NV."):
            return did_you_mean(name[3:], nv_names or (), "(...)").replace("mean ", "mean NV.", 1)
        if not name.isidentifier() or name in self.builtins:
            return ""
        return did_you_mean(name, [*self.builtins, *(f"NV.{n}" for n in nv_names or ())], "(...)")

    def io_call(self, line: str) -> IoCallLine:
        """Check ``IO.name(...)``, to be run in the shell."""
        text = _one_line(line)
        error = self.io_error()
        if error:
            raise UsageError(f"your IO functions cannot be used: {error}")
        try:
            call = parse_command(text, builtins=(), io_names=self.io_names())
        except CommandError as exc:
            raise UsageError(str(exc)) from None
        if call.namespace != "IO":
            raise UsageError(f"expected IO.name(...), got {call.qualname}(...)")
        return IoCallLine(call)

    def shell_line(self, line: str, shell_commands: Collection[str]) -> ShellLine:
        """Decide what a line typed into the shell is, and check it (shell commands are checked by their parser)."""
        text = line.strip()
        first = text.split(maxsplit=1)[0] if text else ""
        if "(" not in text and first.lower() in shell_commands:
            return ShellCommandLine(first.lower(), text)
        if text.startswith(IO_PREFIX):
            return self.io_call(text)
        hint = did_you_mean(first, shell_commands) if "(" not in text else ""
        if "(" not in text and (len(text.split()) == 1 or hint):
            known = ", ".join(sorted(shell_commands))
            raise UsageError(
                f"unknown shell command {first!r}: {hint + ' ' if hint else ''}shell commands are {known}; "
                "to send a command type SELECTOR COMMAND, e.g. lab3 03 print('hi')"
            )
        return self.instruction(text)


def _one_line(line: str) -> str:
    if not isinstance(line, str):
        raise UsageError(f"a line is text, not {type(line).__name__}")
    if any(mark in line for mark in _LINE_BREAKS):
        raise UsageError("a command must fit on one line: it contains a line break")
    text = line.strip()
    if not text:
        raise UsageError("empty line: expected SELECTOR COMMAND, e.g. lab3 03 print('hi')")
    return text
