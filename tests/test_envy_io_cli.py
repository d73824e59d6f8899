"""``envy-io`` subcommands on a real temporary share: send, status, logs, and their one-line errors.

Agents are stood in for by status files written with the agents' own
``write_status`` and log files in the agents' log layout; the instruction
file is read back with the agents' own parser.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envy.platform.host import user_name
from envy.protocol.instructions import parse_instruction_file
from envy.protocol.status import AgentStatus, WorkerStatus, write_status
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from envy_io.cli import main
from envy_io.log_setup import teardown_logging

SUBPROCESS_TIMEOUT_S = 60


@pytest.fixture
def share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShareLayout]:
    """A fresh share; local state and config go to temp folders, never the real home."""
    monkeypatch.setenv("ENVY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ENVY_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ENVY_SHARE", "ENVY_LOG_DIR", "ENVY_POLICY"):
        monkeypatch.delenv(name, raising=False)
    init_share(tmp_path / "share", user_name(), fs=REAL_FS)
    yield ShareLayout(tmp_path / "share")
    teardown_logging()


def run(share: ShareLayout, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--share", str(share.root), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def commands_in(share: ShareLayout) -> list[str]:
    parsed = parse_instruction_file(share.instructions.read_bytes())
    assert parsed.bad == []
    return [ins.text for ins in parsed.instructions]


def assert_one_line_error(code: int, out: str, err: str, prog: str, fragment: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: ")
    assert fragment in lines[0]


# -- send --------------------------------------------------------------------


def test_send_writes_a_stamped_line_that_agents_read_back(
    share: ShareLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(share, capsys, "send", "lab3 03 print('hi')")

    assert code == 0, err
    parsed = parse_instruction_file(share.instructions.read_bytes())
    assert parsed.bad == [] and parsed.unstamped == []
    (ins,) = parsed.instructions
    assert (ins.selector, ins.command) == ("lab3 03", "print('hi')")
    assert out.split() == [ins.id, "lab3", "03", "print('hi')"]


def test_send_several_lines_keeps_their_order(share: ShareLayout, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(share, capsys, "send", "* print('one')", "lab3 1-4 NV.say_hello('class')", "lab3-03 stop()")

    assert code == 0
    assert commands_in(share) == ["* print('one')", "lab3 1-4 NV.say_hello('class')", "lab3-03 stop()"]
    assert len(out.splitlines()) == 3


BAD_LINES = [
    ("lab3 1-x print('hi')", "bad host numbers"),
    ("lab3 03 04 05 print('hi')", "1 or 2 words"),
    ("@nobody print('hi')", "unknown group @nobody"),
    ("* __import__('os')", "unknown command '__import__'"),
    ("__import__('os').system('ls')", "missing selector"),
    ("* __import__('os').system('ls')", "cannot call"),
    ("lab3 03 open('x')", "unknown command 'open'"),
    ("* print(open)", "names not allowed"),
    ("* NV.not_there()", "unknown function NV.not_there"),
    ("* NV._private()", "private"),
    ("* IO.hello_lab()", "IO functions run in the Envy IO shell"),
    ("IO.hello_lab('lab3')", "IO functions run in the Envy IO shell"),
    ("* print('a'\n)", "one line"),
    ("lab3 03 render", "no command"),
]


@pytest.mark.parametrize(("line", "fragment"), BAD_LINES)
def test_a_bad_line_exits_2_with_one_line_and_writes_nothing(
    share: ShareLayout, capsys: pytest.CaptureFixture[str], line: str, fragment: str
) -> None:
    before = share.instructions.read_bytes()

    code, out, err = run(share, capsys, "send", "* print('fine')", line)

    assert_one_line_error(code, out, err, "envy-io send", fragment)
    assert "line 2" in err
    assert share.instructions.read_bytes() == before


def test_nv_names_are_not_checked_when_the_nv_file_is_broken(
    share: ShareLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    (share.user_dir(user_name()) / "Envy_Functions.py").write_text("def broken(:\n")

    code, _, err = run(share, capsys, "send", "* NV.anything('x')")
    assert code == 0
    assert "warning" in err and "not checked" in err
    assert commands_in(share) == ["* NV.anything('x')"]

    code, out, err = run(share, capsys, "send", "* NV._hidden()")
    assert_one_line_error(code, out, err, "envy-io send", "private")


def test_nv_file_is_read_not_run(share: ShareLayout, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (share.user_dir(user_name()) / "Envy_Functions.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nimport hou\n\ndef bake(agent, name):\n    pass\n"
    )

    code, _, err = run(share, capsys, "send", "* NV.bake('hero')")

    assert code == 0, err
    assert not marker.exists()
    code, out, err = run(share, capsys, "send", "* NV.boil('hero')")
    assert_one_line_error(code, out, err, "envy-io send", "known NV functions are NV.bake")


def test_send_stamps_hand_written_lines_and_reports_malformed_ones(
    share: ShareLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    with share.instructions.open("a", encoding="utf-8") as f:
        f.write("lab3 03 print('by hand')\n[nonsense] * print('x')\n")

    code, _, err = run(share, capsys, "send", "* print('new')")

    assert code == 0
    assert "instruction line" in err and "skipped" in err
    assert "stamped 1" in err
    assert commands_in(share) == ["lab3 03 print('by hand')", "* print('new')"]


def test_usage_errors_are_one_line(share: ShareLayout, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(*run(share, capsys, "send"), "envy-io send", "LINE")
    assert_one_line_error(*run(share, capsys, "send", "* print(1)", "--nope"), "envy-io send", "--nope")
    assert_one_line_error(*run(share, capsys, "status", "--wait", "soon"), "envy-io status", "seconds")
    assert_one_line_error(*run(share, capsys, "logs"), "envy-io logs", "HOST")
    assert_one_line_error(*run(share, capsys, "logs", "lab3-03", "-n", "0"), "envy-io logs", "whole number")
    assert_one_line_error(*run(share, capsys, "frobnicate"), "envy-io", "invalid choice")


def test_no_share_and_unmounted_share(tmp_path: Path, share: ShareLayout, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["send", "* print(1)"])
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, "envy-io send", "no share given")

    empty_mount_point = tmp_path / "unmounted"
    empty_mount_point.mkdir()
    code = main(["--share", str(empty_mount_point), "send", "* print(1)"])
    _, err = capsys.readouterr()
    assert code == 1
    assert len(err.splitlines()) == 1 and "is the drive mounted" in err
    assert list(empty_mount_point.iterdir()) == []  # nothing created under an empty mount point


def test_send_as_a_real_subprocess(share: ShareLayout) -> None:
    base = [sys.executable, "-m", "envy_io.cli", "--share", str(share.root), "send"]

    good = subprocess.run([*base, "lab3 * print('from a process')"], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S)
    bad = subprocess.run([*base, "lab3 * open('x')"], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)

    assert good.returncode == 0, good.stderr
    assert commands_in(share) == ["lab3 * print('from a process')"]
    assert bad.returncode == 2
    assert bad.stdout == "" and len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("envy-io send: ")
    assert commands_in(share) == ["lab3 * print('from a process')"]


SENDER_SCRIPT = """
import sys
from envy_io.cli import main
from envy.share.fs import REAL_FS
share, tag = sys.argv[1], sys.argv[2]
codes = [main(["--share", share, "send", f"* print('{tag}-{i}')"]) for i in range(20)]
sys.exit(max(codes))
"""


def test_two_concurrent_senders_lose_no_command(share: ShareLayout) -> None:
    senders = [
        subprocess.Popen([sys.executable, "-c", SENDER_SCRIPT, str(share.root), tag],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    results = [p.communicate(timeout=SUBPROCESS_TIMEOUT_S) for p in senders]

    assert [p.returncode for p in senders] == [0, 0], results
    parsed = parse_instruction_file(share.instructions.read_bytes())
    sent = sorted(ins.command for ins in parsed.instructions)
    assert sent == sorted(f"print('{tag}-{i}')" for tag in "ab" for i in range(20))
    assert len({ins.id for ins in parsed.instructions}) == 40
    # Each sender's own commands stay in the order it sent them.
    for tag in "ab":
        mine = [ins.command for ins in parsed.instructions if ins.command.startswith(f"print('{tag}-")]
        assert mine == [f"print('{tag}-{i}')" for i in range(20)]


# -- status ------------------------------------------------------------------


class FakeAgent:
    """Writes a status file like an agent's heartbeat; ``beating`` agents bump their counter."""

    def __init__(self, layout: ShareLayout, status: AgentStatus) -> None:
        self.layout = layout
        self.status = status
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        write_status(layout, status, fs=REAL_FS)

    def _beat(self) -> None:
        # At the heartbeat it declares: beating faster than that is what a forger does (suspect).
        while not self.stopped.wait(self.status.heartbeat):
            self.status.counter += 1
            write_status(self.layout, self.status, fs=REAL_FS)

    def __enter__(self) -> FakeAgent:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def agent_status(host: str, ip: str, **fields: object) -> AgentStatus:
    return AgentStatus(host=host, nonce=f"nonce-{host}", ip=ip, user="student", pid=4242, version="0.1.0",
                       heartbeat=0.2, **fields)  # type: ignore[arg-type]


def test_status_json_tells_a_beating_agent_from_a_frozen_one(
    share: ShareLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    write_status(share, agent_status("lab3-04", "10.0.0.4", state="idle", counter=7), fs=REAL_FS)  # frozen
    (share.status_dir / "lab3-09.json").write_text("{not json")
    beating = agent_status("lab3-03", "10.0.0.3", state="rendering", work="job shot010",
                           workers=[WorkerStatus(0, job="shot010", frame="12", percent=45.0)])

    with FakeAgent(share, beating):
        code, out, err = run(share, capsys, "status", "--json", "--wait", "1.5")

    assert code == 0
    agents = {a["host"]: a for a in json.loads(out)}
    assert set(agents) == {"lab3-03", "lab3-04"}
    assert agents["lab3-03"]["alive"] is True
    assert agents["lab3-04"]["alive"] is False
    for key in ("host", "alive", "state", "ip", "user", "pid", "version", "work", "message", "workers", "counter"):
        assert key in agents["lab3-03"]
    assert agents["lab3-03"]["workers"][0]["frame"] == "12"
    assert agents["lab3-04"]["counter"] == 7
    assert "lab3-09.json" in err and "warning" in err


def test_status_lines_in_the_frame_server_style(share: ShareLayout, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(
        share, agent_status("lab3-05", "10.0.0.5", state="locked", locked_reason="exam until 12:00"), fs=REAL_FS
    )
    with FakeAgent(share, agent_status("lab3-03", "10.0.0.3", state="idle")):
        code, out, _ = run(share, capsys, "status", "--wait", "1.5")  # past the frozen one's heartbeat + 1 s

    assert code == 0
    assert out.splitlines() == [
        "Worker 0 - lab3-03 - 10.0.0.3 - idle",
        "Worker 1 - lab3-05 - 10.0.0.5 - locked (exam until 12:00) (stale)",
    ]


def test_status_returns_early_once_every_agent_is_seen_alive(
    share: ShareLayout, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeAgent(share, agent_status("lab3-03", "10.0.0.3", state="idle")):
        started = time.monotonic()
        code, out, _ = run(share, capsys, "status", "--json", "--wait", "30")
        took = time.monotonic() - started

    assert code == 0
    assert json.loads(out)[0]["alive"] is True
    assert took < 15  # it did not sit out the 30 s wait


def test_status_remembers_what_it_saw_between_runs(share: ShareLayout, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeAgent(share, agent_status("lab3-03", "10.0.0.3", state="idle")):
        run(share, capsys, "status", "--wait", "5")
    # The agent stopped beating just now, well within dead_after: a run that
    # cannot wait still trusts the change it saw a moment ago.
    code, out, _ = run(share, capsys, "status", "--json", "--wait", "0")
    assert code == 0
    assert json.loads(out)[0]["alive"] is True
    assert (Path(os.environ["ENVY_STATE_DIR"]) / "io-observations.json").is_file()


def test_status_with_no_agents(share: ShareLayout, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(share, capsys, "status", "--json")
    assert (code, json.loads(out)) == (0, [])


# -- logs --------------------------------------------------------------------


def write_agent_log(share: ShareLayout, host: str, lines: int) -> None:
    folder = share.host_logs(host)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.log").write_text("".join(f"line {i}\n" for i in range(1, lines + 1)), encoding="utf-8")


def test_logs_shows_the_tail_of_an_agent_log(share: ShareLayout, capsys: pytest.CaptureFixture[str]) -> None:
    write_agent_log(share, "lab3-03", 100)

    code, out, _ = run(share, capsys, "logs", "LAB3-03", "-n", "3")
    assert (code, out.splitlines()) == (0, ["line 98", "line 99", "line 100"])

    code, out, _ = run(share, capsys, "logs", "lab3-03")
    assert code == 0 and out.splitlines() == [f"line {i}" for i in range(61, 101)]


def test_logs_of_an_unknown_host_names_the_known_ones(share: ShareLayout, capsys: pytest.CaptureFixture[str]) -> None:
    write_agent_log(share, "lab3-03", 1)
    write_agent_log(share, "lab3-04", 1)
    (share.logs_dir / ".DS_Store").write_text("")

    code, out, err = run(share, capsys, "logs", "lab9-01")

    assert_one_line_error(code, out, err, "envy-io logs", "lab3-03, lab3-04")
    assert ".DS_Store" not in err


def test_logs_follow_envy_log_dir(share: ShareLayout, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    local_logs = tmp_path / "local-logs"
    (local_logs / "lab1-01").mkdir(parents=True)
    (local_logs / "lab1-01" / "agent.log").write_text("started\n")
    monkeypatch.setenv("ENVY_LOG_DIR", str(local_logs))

    code, out, _ = run(share, capsys, "logs", "lab1-01")
    assert (code, out) == (0, "started\n")
