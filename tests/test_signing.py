"""Signed mode: the key, the HMAC over each line, and an agent that rejects tampered,
unsigned, replayed and expired lines."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from envy.protocol.instructions import Instruction, parse_instruction_file, stamp
from envy.protocol.sender import InstructionSender
from envy.protocol.signing import (
    KEY_ENV,
    LastRunId,
    SignedInstructions,
    SigningError,
    default_key_path,
    keygen,
    load_key,
    make_signer,
    signature_ok,
)
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from farm import Farm, wait_for

KEY = bytes(range(32))


def test_a_signed_line_survives_the_file_round_trip_and_any_change_breaks_it() -> None:
    sign = make_signer(KEY)
    ins = sign(stamp("lab3  03", "NV.bake('hero',  frames=10)"))
    parsed = parse_instruction_file((ins.format() + "\n").encode()).instructions[0]
    assert parsed.signature == ins.signature and signature_ok(KEY, parsed)
    for field, value in [("id", f"{int(ins.id, 16) + 1:016x}"), ("issued", ins.issued + 1), ("selector", "*"),
                         ("command", "NV.bake('villain',  frames=10)")]:
        changed = Instruction(**{**parsed.__dict__, field: value})
        assert not signature_ok(KEY, changed), field
    assert not signature_ok(bytes(32), parsed)  # another key


def test_keygen_makes_a_private_key_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = keygen()
    assert path == default_key_path() and path.parent == Path(os.environ["ENVY_STATE_DIR"])
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_key()) == 32
    with pytest.raises(SigningError, match="already exists"):
        keygen(path)
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "elsewhere.key"))
    assert keygen() == tmp_path / "elsewhere.key"


def test_load_key_refuses_missing_malformed_shared_and_readable_keys(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="no key at .*envy-io keygen"):
        load_key(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not hex\n")
    bad.chmod(0o600)
    with pytest.raises(SigningError, match="not an Envy signing key"):
        load_key(bad)
    share = tmp_path / "share"
    share.mkdir()
    with pytest.raises(SigningError, match="keep the signing key off the share"):
        keygen(share / "signing.key", share)
    on_share = keygen(share / "signing.key")  # put there by hand
    with pytest.raises(SigningError, match="must not be on the share"):
        load_key(on_share, share)
    if os.name == "posix":
        readable = keygen(tmp_path / "readable.key")
        readable.chmod(0o644)
        with pytest.raises(SigningError, match=r"other users can read the signing key \(mode 0644\)"):
            load_key(readable)


def test_the_checker_names_each_kind_of_rejection_and_persists_the_last_id(tmp_path: Path) -> None:
    reported: list[str] = []
    now = time.time()
    check = SignedInstructions(KEY, LastRunId(tmp_path / "last-id"), 600, lambda: now, reported.append)
    sign = make_signer(KEY)
    first, second = sign(stamp("*", "print(1)", now - 5)), sign(stamp("*", "print(2)", now - 4))
    assert check(second)
    assert (tmp_path / "last-id").read_text().strip() == second.id
    tampered = Instruction(**{**sign(stamp("*", "print(3)", now)).__dict__, "command": "quit()"})
    expired = sign(stamp("*", "print(4)", now - 601))
    for ins in (first, tampered, stamp("*", "print(5)", now), expired):
        assert not check(ins)
    assert [r.split(": ", 2)[-1] for r in reported] == [
        f"replayed (id not newer than {second.id}, the last one this agent ran)",
        "bad signature (tampered with, or signed with another key)",
        "unsigned",
        "expired (issued 601 s ago; commands live 600 s)",
    ]
    # A restarted agent remembers: the same line is a replay even with an empty ledger.
    again = SignedInstructions(KEY, LastRunId(tmp_path / "last-id"), 600, lambda: now, reported.append)
    assert not again(second) and "replayed" in reported[-1]


def test_envy_io_never_signs_a_line_it_finds_in_the_file(tmp_path: Path) -> None:
    init_share(tmp_path / "share", "student", fs=REAL_FS)
    layout = ShareLayout(tmp_path / "share")
    with open(layout.instructions, "a", encoding="utf-8") as f:
        f.write("* print('planted by someone else')\n")
    sender = InstructionSender(layout, 600, signer=make_signer(KEY), fs=REAL_FS)
    result = sender.send(["* print('mine')"])
    assert [i.signature is None for i in result.stamped] == [True]
    assert all(signature_ok(KEY, i) for i in result.sent)


# -- a real agent in signed mode ------------------------------------------------------------------
def test_signed_agent_runs_only_good_lines_and_logs_every_rejection(farm: Farm, tmp_path: Path) -> None:
    key_path = keygen(tmp_path / "keys" / "signing.key")
    farm.env[KEY_ENV] = str(key_path)
    key = load_key(key_path)
    agent = farm.start_agent("lab1-01", signed=True)
    farm.wait_heartbeat(agent)
    signer = make_signer(key)

    def append(*lines: Instruction | str) -> None:
        text = farm.layout.instructions.read_text()
        text += "".join((x.format() if isinstance(x, Instruction) else x) + "\n" for x in lines)
        farm.layout.instructions.write_text(text)

    now = time.time()
    good = signer(stamp("*", "print('good one')", now))
    old_but_valid = signer(stamp("*", "print('replayed')", now - 30))  # signed earlier, never run, id older
    tampered = signer(stamp("*", "print('harmless')", now))
    tampered_line = tampered.format().replace("print('harmless')", "print('tampered')")
    append(good)
    wait_for(lambda: "print: good one" in farm.log("lab1-01"), 15, "the good line to run")
    append(
        stamp("*", "print('unsigned')", now),
        tampered_line,
        old_but_valid,
        signer(stamp("*", "print('expired')", now - 3600)),
    )
    log = ""

    def all_reported() -> bool:
        nonlocal log
        log = farm.log("lab1-01")
        return all(w in log for w in ("unsigned", "bad signature", "replayed", "expired"))

    wait_for(all_reported, 15, "every rejection in the log")
    for text in ("unsigned", "tampered", "replayed", "expired"):
        assert f"print: {text}" not in log
    # The shell's own signed sends still work.
    sender = farm.sender()
    sender.signer = signer
    sender.send(["* print('sent by envy-io')"])
    wait_for(lambda: "print: sent by envy-io" in farm.log("lab1-01"), 15, "a line sent with the signer")
    status = json.loads(farm.layout.status_file("lab1-01").read_text())
    assert status["state"] == "idle" and agent.alive()


def test_signed_mode_without_a_key_refuses_to_start(farm: Farm, tmp_path: Path) -> None:
    farm.env[KEY_ENV] = str(tmp_path / "nowhere.key")
    agent = farm.start_agent("lab1-01", signed=True)
    assert agent.wait_exit(20) != 0
    assert agent.output().strip().splitlines()[-1].startswith("envy agent: signed mode is on but there is no key at")
