"""Old temp files of crashed writers are removed by the folder's owner; young ones and others' never."""

from __future__ import annotations

import os
import time
from pathlib import Path

from envy.protocol.sender import InstructionSender
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, init_share
from envy.share.names import temp_name_for
from envy.share.temp_cleanup import TEMP_MAX_AGE_S, final_name_of, remove_old_temp_files


def _temp(folder: Path, final: str, age_s: float) -> Path:
    path = folder / temp_name_for(final)
    path.write_bytes(b"half written")
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


def test_final_name_of_a_temp_name() -> None:
    assert final_name_of(".instructions.txt.envy-tmp-0123456789ab") == "instructions.txt"
    assert final_name_of(".lab1-01.json.envy-tmp-abcdefabcdef") == "lab1-01.json"
    assert final_name_of("instructions.txt") is None
    assert final_name_of(".x.envy-tmp-short") is None


def test_only_old_temp_files_of_owned_names_are_removed(tmp_path: Path) -> None:
    old_mine = _temp(tmp_path, "lab1-01.json", TEMP_MAX_AGE_S + 60)
    young_mine = _temp(tmp_path, "lab1-01.json", 5)
    old_other = _temp(tmp_path, "lab1-02.json", TEMP_MAX_AGE_S + 60)
    real = tmp_path / "lab1-01.json"
    real.write_text("{}")
    os.utime(real, (0, 0))
    removed = remove_old_temp_files(tmp_path, ShareFS(), time.time(), {"lab1-01.json"})
    assert removed == [old_mine.name]
    assert young_mine.exists() and old_other.exists() and real.exists()


def test_age_is_judged_on_the_given_share_clock(tmp_path: Path) -> None:
    path = _temp(tmp_path, "instructions.txt", 0)
    server_now = time.time() + TEMP_MAX_AGE_S + 1  # the file server's clock is what counts
    assert remove_old_temp_files(tmp_path, ShareFS(), server_now, {"instructions.txt"}) == [path.name]


def test_a_failing_share_ends_the_round_quietly(tmp_path: Path) -> None:
    class Failing(ShareFS):
        def listdir(self, path):  # type: ignore[no-untyped-def]
            raise OSError(5, "Input/output error")

    assert remove_old_temp_files(tmp_path, Failing(), time.time(), {"x"}) == []


def test_the_shell_removes_old_temp_files_of_the_instruction_file_when_it_sends(tmp_path: Path) -> None:
    init_share(tmp_path / "share", "student", ShareFS())
    layout = ShareLayout(tmp_path / "share")
    crashed = _temp(layout.root, "instructions.txt", TEMP_MAX_AGE_S + 60)
    writing_now = _temp(layout.root, "instructions.txt", 1)
    InstructionSender(layout, 600, ShareFS(), clock=time.time).send(["* print('hi')"])
    assert not crashed.exists() and writing_now.exists()


def test_the_agents_heartbeat_removes_old_temp_files_of_its_own_status_file(tmp_path: Path) -> None:
    from envy.agent.heartbeat import TEMP_CLEANUP_EVERY_BEATS, Heartbeat
    from envy.protocol.status import AgentStatus
    from envy.share.share_clock import ShareClock

    init_share(tmp_path / "share", "student", ShareFS())
    layout = ShareLayout(tmp_path / "share")
    layout.status_dir.mkdir(exist_ok=True)
    mine = _temp(layout.status_dir, "lab1-01.json", TEMP_MAX_AGE_S + 60)
    others = _temp(layout.status_dir, "lab1-02.json", TEMP_MAX_AGE_S + 60)
    beat = Heartbeat(layout, ShareFS(), lambda: 5.0, lambda: AgentStatus(host="lab1-01", nonce="n"), lambda: True,
                     ShareClock())
    for _ in range(TEMP_CLEANUP_EVERY_BEATS + 2):
        beat.beat()
    assert not mine.exists() and others.exists()
