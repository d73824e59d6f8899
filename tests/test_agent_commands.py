"""Real agent subprocesses on a temporary share: commands reach exactly the selected hosts, once."""

from __future__ import annotations

import time
from pathlib import Path

from envy.protocol.instructions import Instruction, format_time
from envy.protocol.sender import InstructionSender
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from farm import Farm, send_marker, wait_for


def printed(farm: Farm, host: str, text: str) -> int:
    return farm.count_in_log(host, f"print: {text}")


def test_command_reaches_exactly_the_selected_hosts_once_each(farm: Farm) -> None:
    hosts = ["lab1-01", "lab1-02", "lab1-10", "lab2-01"]
    agents = [farm.start_agent(h) for h in hosts]
    for a in agents:
        farm.wait_heartbeat(a)
    farm.send("lab1 1 print('one')", "lab1 * print('lab one')", "* print('everyone')", "LAB2-1 print('exact')")
    wait_for(lambda: all(printed(farm, h, "everyone") for h in hosts), 15, "every agent to print")
    wait_for(lambda: printed(farm, "lab2-01", "exact"), 15, "lab2-01 to print")
    farm.marker(*hosts)  # every host has now seen all four lines: a wrong host would have run one
    assert [printed(farm, h, "one") for h in hosts] == [1, 0, 0, 0]  # never a substring match: not lab1-10
    assert [printed(farm, h, "lab one") for h in hosts] == [1, 1, 1, 0]
    assert [printed(farm, h, "everyone") for h in hosts] == [1, 1, 1, 1]
    assert [printed(farm, h, "exact") for h in hosts] == [0, 0, 0, 1]


def test_restarted_agent_does_not_replay_but_a_new_agent_picks_up_young_commands(farm: Farm) -> None:
    a = farm.start_agent("lab3-03")
    farm.wait_heartbeat(a)
    farm.send("lab3 * print('once only')")
    wait_for(lambda: printed(farm, "lab3-03", "once only"), 15, "the print")
    farm.send("lab3 03 quit()")
    assert a.wait_exit(15) == 0
    # A fresh agent on another host joins later: the command is younger than its lifetime.
    b = farm.start_agent("lab3-04")
    again = farm.start_agent("lab3-03")
    farm.wait_heartbeat(again)
    farm.wait_heartbeat(b)
    wait_for(lambda: printed(farm, "lab3-04", "once only"), 15, "the late agent to pick up the young command")
    farm.send("lab3 * print('marker')")
    wait_for(lambda: printed(farm, "lab3-03", "marker"), 15, "the restarted agent to run a new command")
    assert printed(farm, "lab3-03", "once only") == 1


def test_old_commands_are_not_replayed_by_a_new_agent(farm: Farm) -> None:
    old = Instruction("0" * 4 + "1" * 12, time.time() - 3600, "*", "print('ancient')")
    text = farm.layout.instructions.read_text() + old.format() + "\n"
    farm.layout.instructions.write_text(text)
    a = farm.start_agent("lab1-01")
    farm.wait_heartbeat(a)
    farm.send("* print('fresh')")
    wait_for(lambda: printed(farm, "lab1-01", "fresh"), 15, "the fresh command")
    assert printed(farm, "lab1-01", "ancient") == 0


def test_malformed_lines_are_reported_and_skipped_and_the_agent_carries_on(farm: Farm) -> None:
    a = farm.start_agent("lab1-01")
    farm.wait_heartbeat(a)
    now = format_time(time.time())
    bad = (
        f"[00000000000000aa {now}] * __import__('os').system('touch {farm.root}/pwned')\n"
        f"[00000000000000ab {now}] * open('/etc/passwd')\n"
        f"[00000000000000ac {now}] * print(*[1])\n"
        f"[00000000000000ad {now}] re:( print('bad regex')\n"
        "[garbage stamp] * print(1)\n"
    )
    farm.layout.instructions.write_bytes(farm.layout.instructions.read_bytes() + bad.encode() + b"\xff\xfe junk\n")
    wait_for(lambda: "not UTF-8" in farm.log("lab1-01"), 15, "the agent to report the hand-edited lines")
    farm.send("* print('still alive')")
    wait_for(lambda: printed(farm, "lab1-01", "still alive"), 15, "the agent to run the good command")
    log = farm.log("lab1-01")
    assert "__import__" in log and "open" in log and "skipped" in log
    assert "not UTF-8" in log
    assert not (farm.root / "pwned").exists()
    assert a.alive()


def test_agent_without_sentinel_waits_creates_nothing_and_joins_once_the_share_is_mounted(tmp_path: Path) -> None:
    farm = Farm(tmp_path)
    empty_mount = tmp_path / "unmounted"
    empty_mount.mkdir()
    a = farm.start_agent("lab1-01", share=empty_mount)
    try:
        wait_for(lambda: "no sentinel" in a.output(), 15, "the agent to say it waits")
        assert list(empty_mount.iterdir()) == []  # nothing created under the empty mount point
        # The share gets mounted (here: made in place). The agent's next poll finds the
        # sentinel and it joins: its "is back" line and the marker show it was waiting
        # in its loop all along, not gone and not writing. (Its console is read: log
        # lines of the first seconds after a mount go to the local log file.)
        init_share(empty_mount, "student", REAL_FS)
        wait_for(lambda: "is back" in a.output(), 15, "the agent to see the share mounted")
        send_marker(InstructionSender(ShareLayout(empty_mount), 600, fs=REAL_FS), lambda host: a.output(), ["lab1-01"])
        assert a.alive()
    finally:
        farm.stop_all()


def test_status_file_heartbeat_counter_and_print_message(farm: Farm) -> None:
    a = farm.start_agent("lab1-01")
    first = farm.wait_heartbeat(a)
    wait_for(lambda: (farm.status("lab1-01") or {}).get("counter", 0) > first["counter"] + 2, 10, "the counter to move")
    farm.send("lab1-01 print('hi', 'there')")
    wait_for(lambda: (farm.status("lab1-01") or {}).get("message") == "hi there", 10, "the message in the status")
    st = farm.status("lab1-01")
    assert st is not None
    for key in ("host", "ip", "user", "pid", "version", "state", "work", "counter", "nonce"):
        assert key in st
    assert st["user"] == "student" and st["state"] == "idle"


def test_stop_kills_children_and_quit_exits_cleanly(farm: Farm) -> None:
    import psutil

    user_dir = farm.layout.user_dir("student")
    (user_dir / "Envy_Functions.py").write_text(
        "import sys\n"
        "def long_job(agent):\n"
        "    agent.run('sleeper', [sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    )
    a = farm.start_agent("lab1-01")
    farm.wait_heartbeat(a)
    farm.send("* NV.long_job()")
    def sleeper() -> list:
        return [p for p in psutil.Process(a.pid).children(recursive=True) if "time.sleep(300)" in " ".join(p.cmdline())]
    children = wait_for(sleeper, 15, "the child process")
    farm.send("* stop()")
    wait_for(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in children),
        15,
        "the child to be killed",
    )  # type: ignore[union-attr]
    assert a.alive()
    farm.send("* quit()")
    assert a.wait_exit(15) == 0


def test_restart_reexecs_with_a_new_nonce(farm: Farm) -> None:
    a = farm.start_agent("lab1-01")
    first = farm.wait_heartbeat(a)
    farm.send("* restart()")
    wait_for(lambda: (farm.status("lab1-01") or {}).get("nonce") not in (None, first["nonce"])
             and (farm.status("lab1-01") or {}).get("state") == "idle", 20, "a new nonce after restart")
    farm.send("* print('after restart')")
    wait_for(lambda: printed(farm, "lab1-01", "after restart"), 15, "the restarted agent to run commands")
    assert farm.log("lab1-01").count("command") >= 2


def test_broken_user_module_is_reported_not_fatal(farm: Farm) -> None:
    (farm.layout.user_dir("student") / "Envy_Functions.py").write_text("def oops(:\n")
    a = farm.start_agent("lab1-01")
    farm.wait_heartbeat(a)
    farm.send("* NV.oops()", "* print('ok')")
    wait_for(lambda: printed(farm, "lab1-01", "ok"), 15, "the agent to go on")
    log = farm.log("lab1-01")
    assert "failed to load" in log and "SyntaxError" in log
    assert a.alive()
