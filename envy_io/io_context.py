"""What an IO function receives as ``io``: the shell, seen from the user's own code.

::

    def hello_lab(io, lab="lab3"):
        io.send(f"{lab} * NV.say_hello('{lab}')")   # checked like a typed line, then sent
        io.print("asked", lab, "to say hello")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envy.config import Config


@dataclass
class IoContext:
    share: Path
    user: str
    config: Config
    _send: Callable[[str], str]
    _print: Callable[[str], None]

    def send(self, line: str) -> str:
        """Send one ``SELECTOR COMMAND`` line to the agents; returns the command's id.

        The line is checked exactly like a typed one; a bad line raises
        ``envy_io.errors.UsageError`` and nothing is written.
        """
        return self._send(line)

    def print(self, *values: object, sep: str = " ") -> None:
        """Print in the shell, above the prompt."""
        self._print(sep.join(str(v) for v in values))
