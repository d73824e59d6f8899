"""Agents on a real network filesystem: one sshfs mount per agent, several mounts of one export."""

from __future__ import annotations

from pathlib import Path

import pytest

from envy.protocol.sender import InstructionSender
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from farm import BUSY_DEADLINE_S, Farm, send_marker, wait_for
from netshare import net_share, require_netshare

pytestmark = pytest.mark.netshare


def read_log(layout: ShareLayout, host: str) -> str:
    path = layout.host_logs(host) / "agent.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_each_agent_on_its_own_mount_runs_commands_sent_through_another_mount(tmp_path: Path) -> None:
    require_netshare()
    farm = Farm(tmp_path / "farm")
    with net_share(tmp_path / "net", mounts=4) as ns:
        export_share = ns.export / "envy"
        init_share(export_share, "student", fs=REAL_FS)
        hosts = ["lab5-01", "lab5-02", "lab5-03"]
        try:
            agents = [farm.start_agent(h, share=ns.mounts[i] / "envy", heartbeat=1.0, poll_interval=0.5, dead_after=5)
                      for i, h in enumerate(hosts)]
            shell_view = ShareLayout(ns.mounts[3] / "envy")
            for a in agents:
                wait_for(
                    lambda a=a: (shell_view.status_file(a.host)).exists(),
                    BUSY_DEADLINE_S,
                    f"{a.host} status via the shell's mount",
                )
            ids = (
                InstructionSender(shell_view, 600, fs=REAL_FS)
                .send(["lab5 * print('over sshfs')", "lab5 02 print('only two')"])
                .sent
            )
            assert len(ids) == 2
            logs = ShareLayout(export_share)

            def printed(host: str, text: str) -> int:
                return read_log(logs, host).count(f"print: {text}")

            # sshfs caches attributes for a while: the command arrives within the cache time plus a poll.
            wait_for(lambda: all(printed(h, "over sshfs") for h in hosts), 45, "every agent to run the command")
            wait_for(lambda: printed("lab5-02", "only two"), 45, "lab5-02 to run its command")
            # Every agent has now seen both lines: one on the wrong host would have run it.
            send_marker(InstructionSender(shell_view, 600, fs=REAL_FS), lambda h: read_log(logs, h), hosts, timeout=45)
            assert [printed(h, "over sshfs") for h in hosts] == [1, 1, 1]
            assert [printed(h, "only two") for h in hosts] == [0, 1, 0]
        finally:
            farm.stop_all()
