"""The Envy IO shell, driven through a real PromptSession with ``create_pipe_input()``.

Keys go in through a pipe exactly as a terminal would send them (``\\r`` is
Enter, ``\\x03`` Ctrl-C, ``\\x04`` Ctrl-D); the shell's own messages are
collected from its ``stdout`` and the instruction file is read back with the
agents' parser.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput, Output
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.validation import ValidationError

from envy.config import load_config
from envy.platform.host import user_name
from envy.protocol.instructions import parse_instruction_file
from envy.protocol.status import AgentStatus, write_status
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from envy.waiting import WaitTimeout, wait_for
from envy_io.agents import AgentBoard
from envy_io.farm import Farm
from envy_io.lexer import lex_line
from envy_io.shell import Shell, run_shell
from envy_io.validation import SEE_ABOVE, LineValidator
from envy_io.watcher import AgentWatcher

ENTER, CTRL_C, CTRL_D = "\r", "\x03", "\x04"


@pytest.fixture
def share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShareLayout]:
    monkeypatch.setenv("ENVY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ENVY_SHARE", "ENVY_LOG_DIR", "ENVY_POLICY"):
        monkeypatch.delenv(name, raising=False)
    init_share(tmp_path / "share", user_name(), fs=REAL_FS)
    yield ShareLayout(tmp_path / "share")


def drive(share: ShareLayout, *keys: str, output: Output | None = None) -> tuple[int, str]:
    """Type ``keys`` into a real shell session; returns its exit code and what it printed."""
    printed = io.StringIO()
    config = load_config(share=str(share.root))
    with create_pipe_input() as pipe:
        for chunk in keys:
            pipe.send_text(chunk)
        code = run_shell(share, config, input=pipe, fs=REAL_FS, output=output or DummyOutput(), stdout=printed,
                         history=InMemoryHistory())
    return code, printed.getvalue()


def commands_in(share: ShareLayout) -> list[str]:
    return [ins.text for ins in parse_instruction_file(share.instructions.read_bytes()).instructions]


def write_io_functions(share: ShareLayout, source: str) -> None:
    (share.user_dir(user_name()) / "IO_functions.py").write_text(source, encoding="utf-8")


def test_a_valid_line_is_sent(share: ShareLayout) -> None:
    code, printed = drive(share, "lab3 03 print('hi')" + ENTER, CTRL_D)

    assert code == 0
    assert commands_in(share) == ["lab3 03 print('hi')"]
    assert "sent " in printed


def test_an_invalid_line_is_not_sent_and_the_session_goes_on(share: ShareLayout) -> None:
    before = share.instructions.read_bytes()

    # Enter on a bad line leaves it in the input (the validator refuses it);
    # Ctrl-C then drops it and the next line is sent as usual.
    code, printed = drive(share, "lab3 03 open('x')" + ENTER, CTRL_C, "* print('after')" + ENTER, CTRL_D)

    assert code == 0
    assert commands_in(share) == ["* print('after')"]
    assert "open" not in share.instructions.read_text()
    assert share.instructions.read_bytes() != before


def test_the_validation_error_is_printed_whole_and_the_toolbar_points_at_it(share: ShareLayout) -> None:
    screen = io.StringIO()
    printed = io.StringIO()
    terminal = Vt100_Output(screen, lambda: Size(rows=24, columns=200), term="xterm")
    config = load_config(share=str(share.root))
    shown = threading.Event()

    def type_like_a_person(pipe: PipeInput) -> None:
        pipe.send_text("lab3 03 open('x')" + ENTER)
        # Wait (with a deadline) until the toolbar points at the error, then give up on the line.
        try:
            wait_for(lambda: SEE_ABOVE in screen.getvalue(), 10, "the toolbar's pointer on the screen", 0.02)
            shown.set()
        except WaitTimeout:
            pass  # the assertion on ``shown`` below reports it
        pipe.send_text(CTRL_C + CTRL_D)

    with create_pipe_input() as pipe:
        typist = threading.Thread(target=type_like_a_person, args=(pipe,))
        typist.start()
        code = run_shell(
            share, config, input=pipe, fs=REAL_FS, output=terminal, stdout=printed, history=InMemoryHistory()
        )
        typist.join(timeout=15)

    assert code == 0
    assert shown.is_set()
    assert "error: unknown command 'open'" in printed.getvalue()
    assert "known commands are" in " ".join(printed.getvalue().split())  # whole, wrapped at 200 columns
    assert commands_in(share) == []


def test_the_validator_gives_one_line_errors(share: ShareLayout) -> None:
    shell = Shell(Farm(load_config(share=str(share.root)), share, user_name(), REAL_FS))
    validator = LineValidator(shell.check)

    for bad, fragment in [
        ("lab3 03 open('x')", "unknown command 'open'"),
        ("* IO.hello_lab()", "IO functions run in the Envy IO shell"),
        ("lab3 1-x print(1)", "bad host numbers"),
        ("IO.nope()", "unknown function IO.nope"),
        ("logs", "HOST"),
        ("status --wait never", "seconds"),
        ("hello", "unknown shell command"),
    ]:
        with pytest.raises(ValidationError) as caught:
            validator.validate(Document(bad))
        assert fragment in caught.value.message and "\n" not in caught.value.message
    for good in ["* print('ok')", "IO.hello_lab('lab3')", "status", "logs lab3-03 -n 5", "logs -h", "help", ""]:
        validator.validate(Document(good))


def test_ctrl_c_drops_the_line_and_continues(share: ShareLayout) -> None:
    code, _ = drive(share, "lab3 03 print('never')", CTRL_C, "* print('two')" + ENTER, CTRL_D)

    assert code == 0
    assert commands_in(share) == ["* print('two')"]


def test_ctrl_d_and_exit_leave_with_0(share: ShareLayout) -> None:
    assert drive(share, CTRL_D)[0] == 0
    code, _ = drive(share, "exit" + ENTER, "* print('not reached')" + ENTER)
    assert code == 0
    assert commands_in(share) == []


def test_an_io_function_runs_in_the_shell_and_sends(share: ShareLayout) -> None:
    write_io_functions(share, (
        "def shout(io, text, lab='lab3'):\n"
        "    '''Ask a lab to print text.'''\n"
        "    command_id = io.send(f'{lab} * print({text!r})')\n"
        "    io.print('shouted', text, 'to', lab, 'from', io.share.name)\n"
        "    return len(command_id)\n"
        "\n"
        "def sloppy(io):\n"
        "    io.send(\"* open('x')\")\n"
    ))

    code, printed = drive(share, "IO.shout('hello', lab='lab5')" + ENTER, "IO.sloppy()" + ENTER, CTRL_D)

    assert code == 0
    assert commands_in(share) == ["lab5 * print('hello')"]
    assert "shouted hello to lab5 from share" in printed
    assert "16" in printed.splitlines()  # the return value is shown
    assert "IO.sloppy raised UsageError" in printed and "unknown command 'open'" in printed


def test_shell_commands_status_logs_and_help(share: ShareLayout) -> None:
    write_status(share, AgentStatus(host="lab3-03", nonce="n", ip="10.0.0.3", state="idle", heartbeat=0.1), fs=REAL_FS)
    share.host_logs("lab3-03").mkdir(parents=True)
    (share.host_logs("lab3-03") / "agent.log").write_text("one\ntwo\nthree\n")

    code, printed = drive(share, "status --wait 0" + ENTER, "logs lab3-03 -n 2" + ENTER, "help" + ENTER, CTRL_D)

    assert code == 0
    lines = printed.splitlines()
    assert "Worker 0 - lab3-03 - 10.0.0.3 - idle (checking)" in lines  # looked at once, not yet for a heartbeat
    assert lines[lines.index("two") + 1] == "three"
    assert any("say_hello" in line for line in lines)  # help lists the user's NV functions


def test_malformed_instruction_lines_are_reported(share: ShareLayout) -> None:
    with share.instructions.open("a", encoding="utf-8") as f:
        f.write("[not-a-stamp] lab3 03 print('x')\n")

    _, printed = drive(share, "* print('ok')" + ENTER, CTRL_D)

    warnings = [line for line in printed.splitlines() if line.startswith("warning: instruction line")]
    assert warnings and "skipped" in warnings[0]
    assert commands_in(share) == ["* print('ok')"]


def test_completion_offers_nv_io_hosts_and_shell_commands(share: ShareLayout) -> None:
    write_io_functions(share, "def render_all(io):\n    '''Render everything.'''\n")
    write_status(share, AgentStatus(host="lab3-03", nonce="n", state="idle"), fs=REAL_FS)
    farm = Farm(load_config(share=str(share.root)), share, user_name(), REAL_FS)
    farm.board.refresh()
    completer = Shell(farm).completer()

    def offered(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]

    assert {"NV.say_hello(", "NV.disk_report(", "NV.run_program("} <= set(offered("* NV."))
    assert offered("lab3 * NV.say") == ["NV.say_hello("]
    assert "print(" in offered("lab3 03 ")
    assert offered("IO.") == ["IO.render_all("]
    assert "logs" in offered("lo") and "lab3-03" in offered("lab3-")
    assert "03" in offered("lab3 ") and "lab3 " in offered("la")
    assert "*" in offered("lab3 ") and "print(" not in offered("lab3 ")  # a lab alone selects nobody
    assert offered("logs ") == ["lab3-03"]
    assert offered("* print('NV.") == []  # never inside the arguments


def test_lexer_colours_the_parts_of_a_line() -> None:
    styles = dict((text, style) for style, text in lex_line("lab3 03 NV.bake('hero', frames=10)"))

    assert styles["lab3 03 "] == "class:selector"
    assert styles["NV"] == "class:namespace"
    assert styles["bake"] == "class:function"
    assert styles["'hero'"] == "class:string"
    assert styles["10"] == "class:number"
    assert dict((t, s) for s, t in lex_line("logs lab3-03", {"logs"}))["logs"] == "class:shell-command"


def test_the_watcher_reports_agents_going_silent_coming_back_and_appearing(share: ShareLayout) -> None:
    now = [1000.0]
    board = AgentBoard(share, dead_after=30, clock=lambda: now[0], fs=REAL_FS)
    agent = AgentStatus(host="lab3-03", nonce="n", state="idle")
    write_status(share, agent, fs=REAL_FS)
    board.refresh()
    notices: list[str] = []
    watcher = AgentWatcher(board, interval=60, notify=notices.append)  # checked by hand, never started

    def beat_and_check(seconds: float) -> None:
        now[0] += seconds
        agent.counter += 1
        write_status(share, agent, fs=REAL_FS)
        watcher.check()

    beat_and_check(1)
    assert notices == []  # seen alive: nothing worth interrupting for
    now[0] += 31
    watcher.check()  # no heartbeat for longer than dead_after
    assert notices == ["lab3-03 has gone silent: no heartbeat for 30 s"]
    beat_and_check(1)
    assert notices[-1] == "lab3-03 is back (idle)"
    write_status(share, AgentStatus(host="lab3-04", nonce="m", state="starting"), fs=REAL_FS)
    watcher.check()
    assert notices[-1] == "new agent lab3-04 (starting)"


def test_resubmitting_the_same_folder_asks_and_only_a_yes_submits_it_again(share: ShareLayout, tmp_path: Path) -> None:
    from envy.render.jobs import list_jobs
    from render_helpers import pov_frames

    frames = pov_frames(tmp_path / "shot030" / "frames", 2)
    code, printed = drive(share, f"submit {frames}" + ENTER, CTRL_D)
    assert code == 0 and len(list_jobs(share, REAL_FS)[0]) == 1, printed
    code, printed = drive(share, f"submit {frames}" + ENTER, ENTER, CTRL_D)  # Enter: no
    # The question goes to the terminal (the prompt's output); a no leaves the refusal, wrapped.
    assert "is already job shot030" in " ".join(printed.split())
    assert len(list_jobs(share, REAL_FS)[0]) == 1
    code, printed = drive(share, f"submit {frames}" + ENTER, "y" + ENTER, CTRL_D)
    names = sorted(j.name for j in list_jobs(share, REAL_FS)[0])
    assert names == ["shot030", "shot030-2"], printed
