"""Attacks on a class farm folder, as a classmate with write access would try them, against real agents.

Each test makes the change to the share that used to hurt the agents (issue 9),
then checks that it is refused AND that the agent is alive and answers a normal
command afterwards (a later marker command, never a sleep).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from envy.protocol.instructions import Instruction, format_time, parse_instruction_file, stamp
from envy.protocol.signing import KEY_ENV, keygen, load_key, make_signer
from envy.render.claims import ItemPattern, sort_listing
from envy.render.jobs import job_path
from farm import Farm, wait_for
from render_helpers import standin_profile, submit_folder

OK_RENDER = "import sys; open(sys.argv[-1], 'wb').write(b'img'); print('100%')"


def printed(farm: Farm, host: str, text: str) -> bool:
    return f"print: {text}" in farm.log(host)


def append_lines(farm: Farm, *lines: str) -> None:
    path = farm.layout.instructions
    path.write_text(path.read_text() + "".join(line + "\n" for line in lines))


def answers(farm: Farm, host: str, marker: str, selector: str = "*") -> None:
    farm.send(f"{selector} print('{marker}')")
    wait_for(lambda: printed(farm, host, marker), 30, f"{host} to answer {marker!r}")
    assert farm.status(host)["state"] != "stopping"


def make_frames(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, count + 1):
        (folder / f"shot.{i:04d}.frame").write_text(json.dumps({"frame": i}))
    return folder


# -- Must-hold 4: selectors cannot hang an agent ----------------------------------------------------


def test_a_backtracking_regex_selector_does_not_freeze_the_agent(farm: Farm) -> None:
    # Python's re needs 2^40 steps for (a+)+b against this name: the agent used to freeze,
    # heartbeat and quit() included. RE2 answers at once.
    host = "a" * 40 + "-01"
    agent = farm.start_agent(host)
    farm.wait_heartbeat(agent)
    farm.send("re:(a+)+b print('never matches')")
    answers(farm, host, "alive after the regex")
    before = farm.status(host)["counter"]
    wait_for(lambda: farm.status(host)["counter"] > before, 10, "the heartbeat to go on")
    assert not printed(farm, host, "never matches")


def test_a_too_costly_regex_selector_is_refused_with_a_message(farm: Farm) -> None:
    agent = farm.start_agent("lab1-01")
    farm.wait_heartbeat(agent)
    append_lines(farm, stamp("re:(.{1000}){1,1000}", "print('costly')").format(),
                 stamp("re:(x)\\1", "print('backreference')").format())
    wait_for(lambda: "too costly" in farm.log("lab1-01") or "repetition" in farm.log("lab1-01"), 15,
             "the costly selector to be refused in the log")
    wait_for(lambda: "backreferences" in farm.log("lab1-01"), 15, "the backreference to be refused")
    answers(farm, "lab1-01", "alive after costly selectors")


# -- Must-hold 3: ids and stamps are bounded --------------------------------------------------------


def test_a_hand_written_id_near_2_64_cannot_lock_signed_mode_out(farm: Farm, tmp_path: Path) -> None:
    key_path = keygen(tmp_path / "keys" / "signing.key")
    farm.env[KEY_ENV] = str(key_path)
    signer = make_signer(load_key(key_path))
    agent = farm.start_agent("lab1-01", signed=True)
    farm.wait_heartbeat(agent)
    # The attack: one hand-written line, no key needed. Envy IO used to take its id as "the last
    # one" and issue 17-digit ids the agents could not read: every later signed command was lost.
    append_lines(farm, f"[fffffffffffffff0 {format_time(time.time())}] * print('attacker')")
    sender = farm.sender()
    sender.signer = signer
    sent = sender.send(["* print('signed after the attack')"]).sent[0]
    assert len(sent.id) == 16 and sent.id < "fffffffffffffff0"
    wait_for(lambda: printed(farm, "lab1-01", "signed after the attack"), 20, "the signed command to run")
    assert not printed(farm, "lab1-01", "attacker")
    again = sender.send(["* print('and the next one')"]).sent[0]
    assert again.id > sent.id
    wait_for(lambda: printed(farm, "lab1-01", "and the next one"), 20, "the next signed command")
    assert agent.alive()


def test_a_stamp_in_the_year_9999_is_refused(farm: Farm) -> None:
    agent = farm.start_agent("lab1-01")
    farm.wait_heartbeat(agent)
    future = Instruction("0196a3f2c4e81b2c", 253370764800.0, "*", "print('from the future')")
    append_lines(farm, future.format())
    wait_for(lambda: "in the future" in farm.log("lab1-01"), 15, "the future stamp to be reported")
    answers(farm, "lab1-01", "alive after the future")
    assert not printed(farm, "lab1-01", "from the future")
    # Envy IO does not carry it either: its next write drops it as a malformed line.
    assert not parse_instruction_file(farm.layout.instructions.read_bytes()).instructions[-2:][0].issued > 1e11


# -- Must-hold 5 and 9: a FIFO or a bad file never stops anyone --------------------------------------


def test_a_fifo_for_a_claim_owners_status_does_not_stop_reclaiming(farm: Farm, tmp_path: Path) -> None:
    profile = standin_profile(tmp_path / "ok.yaml", "standin-ok", OK_RENDER)
    frames = make_frames(tmp_path / "frames", 3)
    submit_folder(farm.share, frames, profiles=[profile], output=str(tmp_path / "out"))
    # A "ghost" agent holds frame 1, and its status file is a FIFO: opening it used to block the
    # reclaimer for ever, so the frame was never taken back.
    (frames / "shot.0001.frame").rename(frames / "shot.0001.envy~work~0~ghost-01~4242~0badf00d.frame")
    os.mkfifo(farm.layout.status_file("ghost-01"))
    agent = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.wait_heartbeat(agent)
    farm.send("* render()")
    pattern = ItemPattern([".frame"])
    wait_for(lambda: len(sort_listing([p.name for p in frames.iterdir()], pattern).done) == 3, 60,
             "all three frames, the ghost's included, to be rendered")
    answers(farm, "lab1-01", "alive after the fifo")


def test_a_job_with_a_malformed_field_at_top_priority_is_skipped_and_the_farm_renders(
    farm: Farm, tmp_path: Path
) -> None:
    profile = standin_profile(tmp_path / "ok.yaml", "standin-ok", OK_RENDER)
    frames = make_frames(tmp_path / "frames", 2)
    good = submit_folder(farm.share, frames, profiles=[profile], output=str(tmp_path / "out"))
    bad_frames = make_frames(tmp_path / "bad", 1)
    bad = submit_folder(farm.share, bad_frames, profiles=[profile], output=str(tmp_path / "out2"), name="bad")
    data = json.loads(job_path(farm.layout, bad.id).read_text())
    data.update(priority=100, chunk="lots", remap=7, settings=[1])
    job_path(farm.layout, bad.id).write_text(json.dumps(data))
    agent = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.wait_heartbeat(agent)
    farm.send("* render()")
    pattern = ItemPattern([".frame"])
    wait_for(lambda: len(sort_listing([p.name for p in frames.iterdir()], pattern).done) == 2, 60,
             "the good job to render")
    wait_for(lambda: f"{bad.id}.json" in farm.log("lab1-01") and "chunk" in farm.log("lab1-01"), 15,
             "a warning naming the bad job file and field")
    answers(farm, "lab1-01", "alive after the bad job")
    assert good.id != bad.id


# -- Must-hold 11: the user template does not make a shell --------------------------------------------


def test_the_template_run_program_cannot_be_made_a_shell(farm: Farm) -> None:
    agent = farm.start_agent("lab1-01")
    farm.wait_heartbeat(agent)
    pwned = farm.root / "pwned"
    farm.send(f"* NV.run_program('sh', '-c', 'touch {pwned}')", f"* NV.run_program('touch {pwned}')",
              "* NV.run_program('python-version')")
    wait_for(lambda: "started python-version as pid" in farm.log("lab1-01"), 20, "the allowed program to start")
    answers(farm, "lab1-01", "alive after run_program")
    assert "is not one of python-version" in farm.log("lab1-01")
    assert not pwned.exists()


# -- Must-hold 10: seats only their user can create --------------------------------------------------


def test_a_squatted_seat_folder_locks_with_a_reason_and_the_agent_recovers_when_the_admin_removes_it(
    farm: Farm, tmp_path: Path
) -> None:
    import pytest

    if os.geteuid() != 0:
        pytest.skip("only root can make a folder owned by another user")
    policy = tmp_path / "policy.yaml"
    policy.write_text('limits:\n  - {hours: "00:00-24:00", machines: 2}\ncheck_every: 0.3\n')
    squat = farm.share / "seats" / "student"
    squat.mkdir(parents=True)
    os.chown(squat, 65534, -1)  # a classmate's `mkdir seats/student`
    agent = farm.start_agent("lab1-01", extra=["--policy", str(policy)])
    farm.wait_heartbeat(agent)
    wait_for(lambda: "is owned by" in (farm.status("lab1-01") or {}).get("locked_reason", ""), 20,
             "the agent to stand down naming the squatted folder")
    assert farm.status("lab1-01")["state"] == "locked"
    squat.rmdir()  # the admin removes it
    wait_for(lambda: (farm.status("lab1-01") or {}).get("state") == "idle", 20, "the agent to claim its seat")
    answers(farm, "lab1-01", "alive after the squat")
