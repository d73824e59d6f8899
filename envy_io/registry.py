"""The subcommands of ``envy-io``, and how to add one.

Each subcommand group is a module under ``envy_io/commands/`` exposing
``SUBCOMMANDS``, a list of :class:`Subcommand`. To add ``envy-io jobs``:

1. write ``envy_io/commands/jobs.py`` with ``add_arguments(parser)`` and
   ``run(args, env) -> int`` functions and
   ``SUBCOMMANDS = [Subcommand("jobs", "list jobs", add_arguments, run)]``;
2. add ``"envy_io.commands.jobs"`` to ``COMMAND_MODULES`` below.

The same subcommand is then available in the shell (``jobs`` typed at the
prompt) unless it says ``in_shell=False``. ``run`` prints to ``env.out`` /
``env.warn`` (never straight to sys.stdout, so the shell can place the text
above its prompt) and raises ``UsageError`` for bad input (exit 2, nothing
written) or ``FarmError`` for a share problem (exit 1). Use ``env.farm`` for
anything on the share; it is opened on first use.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, TextIO

from envy.config import Config
from envy.share.fs import ShareFS
from envy_io.errors import UsageError

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from envy_io.farm import Farm

PROG = "envy-io"

COMMAND_MODULES: tuple[str, ...] = (
    "envy_io.commands.shell",
    "envy_io.commands.send",
    "envy_io.commands.status",
    "envy_io.commands.forget",
    "envy_io.commands.logs",
    "envy_io.commands.policy",
    "envy_io.commands.jobs",
    "envy_io.commands.cache",
    "envy_io.commands.monitor",
    "envy_io.commands.web",
    "envy_io.commands.sign",
)


@dataclass
class CommandEnv:
    """What a subcommand runs with: settings, the user, where to print, and the farm (opened lazily)."""

    config: Config
    user: str
    fs: ShareFS  # the share as this process reaches it: REAL_FS, chosen by envy_io/cli.py
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    prog: str = PROG
    debug: bool = False
    verbose: int = 0
    in_shell: bool = False  # run from the interactive shell: never hold the prompt for long
    # A yes/no question to the person at the shell (True: yes); None from the CLI, which never asks.
    ask: Callable[[str], bool] | None = None
    _farm: Farm | None = None

    @property
    def farm(self) -> Farm:
        if self._farm is None:
            from envy_io.farm import Farm

            self._farm = Farm.open(self.config, self.user, self.fs)
        return self._farm

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"{self.prog}: warning: {text}", file=self.err, flush=True)


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, CommandEnv], int]
    in_shell: bool = True  # also a command of the interactive shell


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input as one ``UsageError`` line instead of usage text and exit."""

    def __init__(self, *args, help_out: TextIO | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.help_out = help_out

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        super()._print_message(message, self.help_out or file)


def subcommands() -> list[Subcommand]:
    found: list[Subcommand] = []
    for module_name in COMMAND_MODULES:
        found.extend(importlib.import_module(module_name).SUBCOMMANDS)
    return found


def shell_parser(sub: Subcommand, help_out: TextIO | None = None) -> OneLineParser:
    """The parser for a subcommand typed in the shell (``logs lab3-03 -n 5``)."""
    parser = OneLineParser(prog=sub.name, description=sub.help, help_out=help_out)
    sub.add_arguments(parser)
    return parser


def seconds(text: str) -> float:
    """argparse type: a number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def count(low: int, high: int) -> Callable[[str], int]:
    """argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text!r}")
        return value

    return parse
