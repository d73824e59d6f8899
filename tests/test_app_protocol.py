"""``envy app protocol N``: the share moves to a protocol only once no agent would be left behind (issue 13).

Agents report the protocols their build speaks in their status file; a newer
agent keeps speaking the share's protocol, so raising it is the admin's step,
refused while any agent's last status says it cannot follow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envy.app.cli import main
from envy.app.layout import AppLayout
from envy.app.protocol import NEWEST_PROTOCOL, read_share_protocol, write_share_protocol
from envy.protocol.status import AgentStatus, read_status, write_status
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "envy"
    init_share(root, "student", REAL_FS)
    write_share_protocol(AppLayout(root), 1, REAL_FS)
    return root


def agent(share: Path, host: str, protocols: list[int], state: str = "idle") -> None:
    write_status(ShareLayout(share), AgentStatus(host=host, nonce="n" + host[-1], version="9.9", state=state,
                                                 protocols=protocols), REAL_FS)


def test_a_protocol_some_running_agent_cannot_speak_is_refused_in_one_line(
    share: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent(share, "lab3-01", [1, 1])
    agent(share, "lab3-02", [2, 3])  # a newer build (speaks no protocol 1)
    agent(share, "lab3-03", [5, 5], state="stopped")  # gone: not waited for
    code = main(["protocol", "--share", str(share), "1"], REAL_FS)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "lab3-02 (envy 9.9, protocols 2-3) cannot speak protocol 1" in err and "lab3-03" not in err
    assert "--force" in err

    assert main(["protocol", "--share", str(share), "1", "--force"], REAL_FS) == 0
    assert "agents left behind: lab3-02" in capsys.readouterr().out
    assert read_share_protocol(AppLayout(share), REAL_FS) == 1


def test_a_protocol_this_build_does_not_speak_is_refused(share: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["protocol", "--share", str(share), str(NEWEST_PROTOCOL + 1)], REAL_FS)
    assert code == 2 and f"not {NEWEST_PROTOCOL + 1}" in capsys.readouterr().err
    assert read_share_protocol(AppLayout(share), REAL_FS) == 1


def test_agents_report_the_protocols_they_speak_and_status_files_without_them_still_read(
    share: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = {"host": "lab3-04", "nonce": "n4", "counter": 3, "version": "0.0.9", "state": "idle"}
    (ShareLayout(share).status_file("lab3-04")).write_text(json.dumps(old))  # a build before protocols
    assert read_status(ShareLayout(share), "lab3-04", REAL_FS).protocols == []
    assert main(["protocol", "--share", str(share), "1"], REAL_FS) == 0  # taken as speaking protocol 1
    assert main(["status", "--share", str(share)], REAL_FS) == 0
    assert "lab3-04: envy 0.0.9 (protocols 1-1) idle" in capsys.readouterr().out
    bad = {**old, "protocols": [1, "two"]}
    (ShareLayout(share).status_file("lab3-04")).write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="'protocols' must be"):
        read_status(ShareLayout(share), "lab3-04", REAL_FS)
