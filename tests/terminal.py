"""A real terminal for tests: a program on a PTY (pexpect), its screen read back with pyte.

What the person would see is ``Terminal.lines()``: the screen after every
escape sequence the program wrote has been applied, exactly as a terminal
emulator applies them. Waits are conditions on the screen with deadlines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pexpect
import pyte

from envy.waiting import wait_for

READ_CHUNK = 65536


class _AnsweringScreen(pyte.Screen):
    """A screen that answers the program's questions (cursor position reports), as a terminal does."""

    answer: Callable[[str], object] = staticmethod(lambda text: None)

    def write_process_input(self, data: str) -> None:
        self.answer(data)


class Terminal:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, rows: int = 24,
                 columns: int = 80) -> None:
        self.screen = _AnsweringScreen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(argv[0], list(argv[1:]), env={**env, "TERM": "xterm"}, cwd=str(cwd),
                                   dimensions=(rows, columns))
        self.screen.answer = self.child.send

    def pump(self) -> None:
        """Feed what the program wrote so far into the screen."""
        while True:
            try:
                data = self.child.read_nonblocking(READ_CHUNK, timeout=0.05)
            except (pexpect.TIMEOUT, pexpect.EOF):
                return
            self.stream.feed(data)

    def lines(self) -> list[str]:
        self.pump()
        return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def wait_screen(self, check: Callable[[list[str]], object], timeout: float, what: str) -> object:
        return wait_for(lambda: check(self.lines()), timeout, what, 0.05)

    def wait_text(self, fragment: str, timeout: float = 30) -> None:
        self.wait_screen(lambda lines: fragment in "\n".join(lines), timeout, f"{fragment!r} on the screen")

    def type(self, text: str) -> None:
        self.child.send(text)

    def cursor_line(self) -> str:
        self.pump()
        return self.screen.display[self.screen.cursor.y].rstrip()

    def close(self) -> None:
        if self.child.isalive():
            self.child.sendcontrol("d")
            try:
                self.child.expect(pexpect.EOF, timeout=10)
            except (pexpect.TIMEOUT, pexpect.EOF):
                pass
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()


def shell_argv(share: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "envy_io", "--share", str(share), "shell"]


def repo_root() -> Path:
    return Path(os.path.dirname(os.path.abspath(__file__))).parent
