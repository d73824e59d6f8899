"""The Envy IO shell: a prompt_toolkit session that sends commands to the farm.

Lines typed here are ``SELECTOR COMMAND`` (sent to agents), ``IO.name(...)``
(one of the user's IO functions, run right here), or a shell command
(``status``, ``logs HOST``, ``help``, ``exit``; any ``envy-io`` subcommand
marked ``in_shell`` works). A line is checked before it is accepted; Ctrl-C
clears the line, Ctrl-D leaves. Background notices (an agent going silent)
are printed above the prompt through ``patch_stdout``.

``run_shell`` takes prompt_toolkit's input and output so tests drive a real
session with ``create_pipe_input()`` and ``DummyOutput()``.
"""

from __future__ import annotations

import argparse
import io
import logging
import shlex
import sys
import textwrap
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.application import create_app_session
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout

from envy.agent.user_modules import call_user_function
from envy.config import Config
from envy.platform.host import local_dirs, user_name
from envy.protocol.commands import Call
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy_io.completion import CompletionSources, EnvyCompleter
from envy_io.errors import EnvyIoError, UsageError
from envy_io.farm import Farm
from envy_io.io_context import IoContext
from envy_io.job_notices import JobNoticeWatcher, notice_watcher
from envy_io.lexer import STYLE, EnvyLexer
from envy_io.lines import InstructionLine, IoCallLine, ShellCommandLine, ShellLine
from envy_io.log_setup import console_to
from envy_io.registry import CommandEnv, Subcommand, shell_parser, subcommands
from envy_io.validation import LineValidator
from envy_io.watcher import AgentWatcher

log = logging.getLogger(__name__)

HISTORY_FILE = "io-history"
SHELL_ONLY_COMMANDS = {
    "help": "show what you can type",
    "exit": "leave the shell (or Ctrl-D)",
    "quit": "leave the shell",
}
# A line starting with this is sent as typed, even when it looks like it would reach nobody.
FORCE_MARK = "!"
# Until the session knows its terminal (tests with DummyOutput).
DEFAULT_WIDTH = 80
# The watcher re-reads status files this often at least (one small read per agent).
MIN_WATCH_INTERVAL_S = 2.0

HELP = """\
Send a command to agents:  SELECTOR COMMAND      e.g.  lab3 03 print('hi')
  *            every host              lab3 *       every host of lab3
  lab3 03      host 3 of lab3          lab3 1-12    hosts 1 to 12 of lab3
  lab3 01,05   hosts 1 and 5           lab3-03      one host by name
  @seniors     a group from config     re:REGEX     hosts whose whole name matches
Commands: print('text'), render(), render('JOB'), stop(), reload(), restart(), quit(), NV.name(...)
Arguments are plain values only: 'text', 12, 1.5, True/False/None, [lists], {{dicts}}.
IO.name(...) runs one of your IO functions here, in the shell.
A line that would reach nobody (lab3 print('x') without the *, render('JOB') of an unknown job) is
refused with the fix; start it with ! to send it as typed.
Shell commands: {commands}
Tab completes, Ctrl-C clears the line, Ctrl-D leaves."""


def run_shell(
    layout: ShareLayout,
    config: Config,
    input: Input | None = None,
    output: Output | None = None,
    *,
    fs: ShareFS,
    user: str | None = None,
    farm: Farm | None = None,
    stdout: TextIO | None = None,
    history: History | None = None,
    watch: bool = True,
    debug: bool = False,
) -> int:
    """Run the shell until Ctrl-D or ``exit``; returns the exit code (0).

    ``stdout`` receives the shell's own messages (default: sys.stdout, patched
    so they appear above the prompt).
    """
    farm = farm or Farm(config, layout, user or user_name(), fs)
    return Shell(farm, stdout, debug).run(input, output, history=history, watch=watch)


class Shell:
    def __init__(self, farm: Farm, stdout: TextIO | None = None, debug: bool = False) -> None:
        self.farm = farm
        self._stdout = stdout
        self.debug = debug
        self.commands: dict[str, Subcommand] = {s.name: s for s in subcommands() if s.in_shell}
        self.command_help = {**{n: s.help for n, s in self.commands.items()}, **SHELL_ONLY_COMMANDS}
        self._width: Callable[[], int] = lambda: DEFAULT_WIDTH  # the terminal's, once the session runs

    # -- output --------------------------------------------------------------

    @property
    def out(self) -> TextIO:
        # Looked up each time: inside patch_stdout, sys.stdout prints above the prompt.
        return self._stdout or sys.stdout

    def echo(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        self.echo(f"warning: {text}")

    def error(self, text: str) -> None:
        # Wrapped at word boundaries to the terminal's width: a cut error loses "what is allowed".
        self.echo(wrap(f"error: {text}", self._width()))

    # -- the session ---------------------------------------------------------

    def run(
        self, input: Input | None, output: Output | None, history: History | None = None, watch: bool = True
    ) -> int:
        # Only a test's own input/output gets its own app session: patch_stdout's writer thread
        # does not inherit context variables, so in a created session it cannot find the running
        # prompt and would write straight over the line being typed (issue 11).
        own_session = input is not None or output is not None
        with create_app_session(input=input, output=output) if own_session else nullcontext():
            session = self._session(history)
            self._prompt_session = session
            self._width = lambda: session.output.get_size().columns
            with patch_stdout(), console_to(sys.stdout):
                self._greet()
                interval = max(self.farm.config.heartbeat, MIN_WATCH_INTERVAL_S)
                with AgentWatcher(self.farm.board, interval, self.echo) if watch else nullcontext(), \
                        self._job_notices(interval) if watch else nullcontext():
                    self._loop(session)
        self.farm.board.save()
        return 0

    def _job_notices(self, interval: float) -> JobNoticeWatcher:
        """Your jobs finishing, printed above the prompt (and a desktop toast): envy_io/job_notices.py."""
        farm = self.farm
        return notice_watcher(farm.layout, farm.fs, farm.user, interval, self.echo, farm.config.notify_desktop)

    def completer(self) -> EnvyCompleter:
        return EnvyCompleter(
            CompletionSources(
                nv_functions=lambda: self.farm.functions.nv.summaries,
                io_functions=self.farm.functions.io_summaries,
                hosts=self.farm.board.hosts,
                groups=lambda: self.farm.config.groups,
                shell_commands=self.command_help,
                host_pattern=self.farm.checker.host_pattern,
            )
        )

    def _session(self, history: History | None) -> PromptSession[str]:
        return PromptSession(
            message=[("class:prompt", "envy> ")],
            lexer=EnvyLexer(self.command_help),
            completer=self.completer(),
            complete_while_typing=False,
            auto_suggest=AutoSuggestFromHistory(),
            history=history or _history_file(local_dirs().state / HISTORY_FILE),
            validator=LineValidator(self.check, report=self.error),
            validate_while_typing=False,
            bottom_toolbar=self._toolbar,
            style=STYLE,
        )

    def _loop(self, session: PromptSession[str]) -> None:
        while True:
            try:
                text = session.prompt()
            except KeyboardInterrupt:
                continue  # Ctrl-C: the line is dropped, the shell goes on
            except EOFError:
                return  # Ctrl-D
            if not text.strip():
                continue
            try:
                if not self.execute(text):
                    return
            except KeyboardInterrupt:
                self.echo("interrupted")

    def _greet(self) -> None:
        self.echo(f"Envy IO on {self.farm.layout.root} as {self.farm.user}. Type help for help, Ctrl-D to leave.")
        for problem in self.farm.instruction_file_problems():
            self.warn(problem)
        for warning in self.farm.board.refresh():
            self.warn(warning)
        nv = self.farm.functions.nv
        if nv.error:
            self.warn(f"NV function names cannot be checked: {nv.error}")
        io_module = self.farm.functions.io
        if io_module.error and io_module.path.exists():
            self.warn(f"your IO functions cannot be used: {io_module.error}")

    def _toolbar(self) -> str:
        views = self.farm.board.views()
        alive = sum(1 for v in views if v.alive)
        return (f" {self.farm.user} @ {self.farm.layout.root}  |  {alive} of {len(views)} agents alive  |  "
                "Tab completes, Ctrl-D leaves ")

    # -- lines ---------------------------------------------------------------

    def check(self, text: str) -> ShellLine:
        """Check a line without running it (the validator calls this); raises UsageError.

        A line starting with ``!`` skips the second look (line_hints.py): it is sent as typed.
        """
        forced = text.lstrip().startswith(FORCE_MARK)
        line = self.farm.checker.shell_line(text.lstrip()[1:] if forced else text, self.command_help)
        if isinstance(line, ShellCommandLine) and line.name in self.commands:
            self._parse_arguments(line, help_out=io.StringIO())
        if isinstance(line, InstructionLine) and not forced:
            self.farm.second_look(line)
        return line

    def execute(self, text: str) -> bool:
        """Run one line; False means leave the shell."""
        try:
            line = self.check(text)
            if isinstance(line, ShellCommandLine):
                return self._run_shell_command(line)
            if isinstance(line, IoCallLine):
                self._run_io_function(line.call)
            else:
                self._send(line)
        except EnvyIoError as exc:
            self.error(str(exc))
        except OSError as exc:
            self.error(f"share problem: {exc}")
        return True

    def _send(self, line: InstructionLine) -> str:
        result = self.farm.send([line])
        for problem in result.skipped:
            self.warn(problem)
        instruction = result.sent[0]
        self.echo(f"sent {instruction.id} {instruction.text}")
        hosts = self.farm.board.hosts()
        if hosts and not any(line.selector.matches(host) for host in hosts):
            self.warn(
                f"no agent seen so far matches {line.selector.text!r}; agents that start within "
                f"{self.farm.config.command_lifetime:g} s will still run it"
            )
        return instruction.id

    def _send_from_io(self, text: str) -> str:
        return self._send(self.farm.checker.instruction(text))

    def _run_io_function(self, call: Call) -> None:
        module = self.farm.functions.io
        func = module.functions.get(call.name)
        if func is None:  # the file changed between check and run
            raise UsageError(f"{call.qualname} is not defined in {module.path.name}")
        context = IoContext(self.farm.layout.root, self.farm.user, self.farm.config, self._send_from_io, self.echo)
        try:
            result = call_user_function(func, context, call.args, dict(call.kwargs))
        except Exception as exc:
            log.debug("%s failed", call.qualname, exc_info=True)
            if self.debug:
                traceback.print_exc(file=self.out)
            self.error(f"{call.qualname} raised {type(exc).__name__}: {exc}")
            return
        if result is not None:
            self.echo(repr(result))

    _prompt_session: PromptSession[str] | None = None

    def _ask(self, question: str) -> bool:
        """Ask at the prompt; only a typed y or yes is a yes (Enter, Ctrl-C and Ctrl-D are no)."""
        session = self._prompt_session
        if session is None:
            return False
        try:
            # Its own one-off prompt on the same terminal: no history, completion or validation.
            answer = PromptSession[str](input=session.input, output=session.output).prompt(f"{question} [y/N] ")
        except (KeyboardInterrupt, EOFError):
            return False
        return answer.strip().lower() in ("y", "yes")

    def _run_shell_command(self, line: ShellCommandLine) -> bool:
        if line.name in ("exit", "quit"):
            return False
        if line.name == "help":
            self._help()
            return True
        args = self._parse_arguments(line, help_out=self.out)
        if args is None:
            return True  # -h: help was printed
        env = CommandEnv(
            self.farm.config, self.farm.user, self.farm.fs, out=self.out, err=self.out, prog=line.name,
            debug=self.debug, in_shell=True, _farm=self.farm, ask=self._ask,
        )
        self.commands[line.name].run(args, env)
        return True

    def _parse_arguments(self, line: ShellCommandLine, help_out: TextIO) -> argparse.Namespace | None:
        """The command's arguments, or None when -h printed the help; bad ones raise UsageError."""
        parser = shell_parser(self.commands[line.name], help_out)
        try:
            return parser.parse_args(split_words(line.text)[1:])
        except SystemExit:
            return None

    def _help(self) -> None:
        commands = ", ".join(f"{name}" for name in sorted(self.command_help))
        self.echo(HELP.format(commands=commands))
        nv, io_module = self.farm.functions.nv, self.farm.functions.io
        self.echo(
            "Your NV functions: " + (", ".join(nv.summaries) or "(none)") + (f"  [{nv.error}]" if nv.error else "")
        )
        self.echo("Your IO functions: " + (", ".join(io_module.names()) or "(none)")
                  + (f"  [{io_module.error}]" if io_module.error else ""))


def wrap(text: str, width: int) -> str:
    """Wrap a message to the terminal, continuation lines indented, never breaking a word apart needlessly."""
    return "\n".join(textwrap.wrap(text, width=max(width - 1, 20), subsequent_indent="  ", break_on_hyphens=False))


def split_words(text: str) -> list[str]:
    """Split a shell command like a shell would, but keep backslashes (Windows paths)."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:
        raise UsageError(f"{exc.args[0] if exc.args else exc}: close the quote") from None


def _history_file(path: Path) -> History:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileHistory(str(path))
    except OSError:
        return InMemoryHistory()

