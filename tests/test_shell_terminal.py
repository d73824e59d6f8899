"""The shell on a real terminal: ``envy-io shell`` on a PTY (pexpect), the screen read back with pyte.

What is asserted is what a person would see: the half-typed line intact on
its own screen line while an agent's notice lands above it, errors wrapped
whole on a narrow terminal, refusals with their fix.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from envy.protocol.instructions import parse_instruction_file
from envy.protocol.status import AgentStatus, write_status
from envy.share.fs import REAL_FS
from farm import Farm
from terminal import Terminal, repo_root, shell_argv

# pexpect.spawn needs a POSIX PTY; a Windows console (ConPTY) is another test's business.
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a PTY (pexpect.spawn) is POSIX only")

PROMPT = "envy> "
DEADLINE_S = 60.0


def commands_in(farm: Farm) -> list[str]:
    return [i.text for i in parse_instruction_file(farm.layout.instructions.read_bytes()).instructions]


@pytest.fixture
def fast_farm(farm: Farm) -> Farm:
    # The shell reads the local config: a fast heartbeat makes its watcher look every 2 s.
    (farm.root / "config").mkdir(parents=True, exist_ok=True)
    (farm.root / "config" / "config.yaml").write_text("heartbeat: 0.5\ndead_after: 3\n", encoding="utf-8")
    return farm


def open_shell(farm: Farm, rows: int = 24, columns: int = 80) -> Iterator[Terminal]:
    terminal = Terminal(shell_argv(farm.share), farm.env, repo_root(), rows=rows, columns=columns)
    try:
        terminal.wait_text(PROMPT.strip(), DEADLINE_S)
        yield terminal
    finally:
        terminal.close()


@pytest.fixture
def shell(fast_farm: Farm) -> Iterator[Terminal]:
    yield from open_shell(fast_farm)


@pytest.fixture
def narrow_shell(fast_farm: Farm) -> Iterator[Terminal]:
    yield from open_shell(fast_farm, columns=40)


def joined(terminal: Terminal) -> str:
    """The screen as one text, wrapped lines put back together."""
    return " ".join(" ".join(terminal.lines()).split())


def test_a_notice_lands_above_the_half_typed_line_which_stays_intact(fast_farm: Farm, shell: Terminal) -> None:
    half = "ux3 * print('typing"
    shell.type(half)
    shell.wait_text(PROMPT + half)

    fast_farm.start_agent("ux3-01")  # a real agent: the shell's watcher announces it while we type
    shell.wait_text("new agent ux3-01", DEADLINE_S)

    lines = shell.lines()
    notice = next(i for i, line in enumerate(lines) if "new agent ux3-01" in line)
    typed = [i for i, line in enumerate(lines) if line == PROMPT + half]
    assert typed, f"the typed line is not intact on the screen:\n{shell.text()}"
    assert notice < typed[-1]
    assert lines[notice].startswith("new agent ux3-01") and half not in lines[notice]
    assert shell.cursor_line() == PROMPT + half  # the cursor is still at the end of what was typed

    shell.type("')\r")
    shell.wait_text("sent ")
    assert commands_in(fast_farm) == ["ux3 * print('typing')"]

    # A lab's name without the * matches no agent: refused with the fix; ! sends it as typed.
    shell.type("ux3 print('x')\r")
    shell.wait_text("ux3 * print('x')")
    assert commands_in(fast_farm) == ["ux3 * print('typing')"]
    shell.type("\x03!ux3 print('x')\r")
    shell.wait_screen(lambda _: len(commands_in(fast_farm)) == 2, DEADLINE_S, "the forced line to be sent")
    assert commands_in(fast_farm)[-1] == "ux3 print('x')"


def test_errors_wrap_whole_on_a_narrow_terminal(narrow_shell: Terminal) -> None:
    narrow_shell.type("lab3 03 open('x')\r")
    narrow_shell.wait_text("error: unknown command")

    narrow_shell.wait_screen(lambda _: "or NV.<name>" in joined(narrow_shell), 10, "the end of the error")
    assert "known commands are print, quit, reload, render, restart, stop, or NV.<name>" in joined(narrow_shell)
    assert all(len(line) <= 40 for line in narrow_shell.lines())


def test_did_you_mean_and_unknown_jobs_are_refused(fast_farm: Farm, narrow_shell: Terminal) -> None:
    narrow_shell.type("stauts\r")
    narrow_shell.wait_screen(lambda _: "did you mean status?" in joined(narrow_shell), 10, "a suggestion")
    narrow_shell.type("\x03* prnt('x')\r")
    narrow_shell.wait_screen(lambda _: "did you mean print(...)?" in joined(narrow_shell), 10, "a suggestion")

    narrow_shell.type("\x03* render('nojob')\r")
    narrow_shell.wait_screen(lambda _: "no job is named 'nojob'" in joined(narrow_shell), 10, "the refusal")
    assert "no jobs are submitted yet" in joined(narrow_shell)
    assert commands_in(fast_farm) == []


def test_a_status_file_alone_makes_its_lab_known_to_the_missing_star_check(fast_farm: Farm) -> None:
    write_status(fast_farm.layout, AgentStatus(host="lab3-01", nonce="n", state="idle"), fs=REAL_FS)
    for terminal in open_shell(fast_farm):
        terminal.type("lab3 print('x')\r")
        terminal.wait_screen(lambda lines: "lab3 * print('x')" in " ".join(" ".join(lines).split()), 10, "the fix")
        assert "no agent is named 'lab3'" in joined(terminal)


def test_resubmitting_a_folder_asks_on_the_terminal_and_a_yes_makes_a_second_job(fast_farm: Farm,
                                                                                  shell: Terminal) -> None:
    from envy.render.jobs import list_jobs
    from render_helpers import pov_frames

    frames = pov_frames(fast_farm.root / "shot040" / "frames", 1)
    shell.type(f"submit {frames}\r")
    shell.wait_screen(lambda _: len(list_jobs(fast_farm.layout, REAL_FS)[0]) == 1, DEADLINE_S, "the first job")
    shell.type(f"submit {frames}\r")
    shell.wait_screen(lambda _: "Submit it again as a new job? [y/N]" in joined(shell), DEADLINE_S, "the question")
    shell.type("y\r")
    shell.wait_screen(lambda _: len(list_jobs(fast_farm.layout, REAL_FS)[0]) == 2, DEADLINE_S, "the second job")
    assert sorted(j.name for j in list_jobs(fast_farm.layout, REAL_FS)[0]) == ["shot040", "shot040-2"]
