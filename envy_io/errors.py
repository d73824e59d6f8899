"""The errors Envy IO reports as one line (pipx style): bad input exits 2, a farm problem exits 1.

Anything else is a bug: it shows a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FARM_PROBLEM = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def one_line(text: str) -> str:
    """Errors end up in a toolbar or a single stderr line: never let user text break that."""
    return " ".join(str(text).split())


class EnvyIoError(Exception):
    """A known problem, printed as ``envy-io <cmd>: <message>``."""

    exit_code = EXIT_FARM_PROBLEM

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(one_line(message))
        self.prog = prog  # "envy-io send"; None lets the caller name the command


class UsageError(EnvyIoError):
    """Bad input from the user: says what was wrong and what is allowed; nothing was written."""

    exit_code = EXIT_BAD_INPUT


class FarmError(EnvyIoError):
    """The share is missing, locked or failing: the input was fine, try again later."""

    exit_code = EXIT_FARM_PROBLEM
