"""Share errors never escape the agent's start-up or its loops (issue 14, Must-hold 5), and the
heartbeat does not wait for the polling loop's backoff to notice the share is back.

Faults are injected through the ShareFS seam (ENGINEERING §4): an SMB client
really returned EIO for ``users/<user>/Envy_Functions.py`` at start-up.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import pytest

from envy.agent.user_modules import NV_FILE
from envy.share.fs import REAL_FS, ShareFS
from envy.share.layout import ShareLayout, init_share
from test_faults_seam import HOST, make_agent  # noqa: F401  (fixture)


class FailingModuleFS(ShareFS):
    """Reading the user's Envy_Functions.py fails with ``code`` while ``failing``."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.failing = True

    def _fail_on_module(self, path) -> None:  # type: ignore[no-untyped-def]
        if self.failing and Path(os.fspath(path)).name == NV_FILE:
            raise OSError(self.code, os.strerror(self.code), os.fspath(path))

    def read_bytes(self, path):  # type: ignore[no-untyped-def]
        self._fail_on_module(path)
        return super().read_bytes(path)

    def read_bounded(self, path, limit):  # type: ignore[no-untyped-def]
        self._fail_on_module(path)  # the module is read bounded and regular (issue 9)
        return super().read_bounded(path, limit)


@pytest.mark.parametrize("code", [errno.EIO, errno.ESTALE, errno.ENXIO, errno.EACCES])
def test_a_share_error_on_the_user_module_at_reload_is_logged_and_the_agent_carries_on(
    tmp_path: Path, make_agent, caplog: pytest.LogCaptureFixture, code: int  # noqa: F811
) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    share = tmp_path / "share"
    init_share(share, "student", fs=REAL_FS)
    module = ShareLayout(share).user_dir("student") / NV_FILE
    module.write_text("def hello():\n    return 'hi'\n")
    fs = FailingModuleFS(code)
    agent = make_agent(share, fs)
    agent.reload()  # what run() does at start-up: must not raise
    assert agent.nv_module.error and os.strerror(code) in agent.nv_module.error
    assert any("cannot read" in r.message and NV_FILE in r.message for r in caplog.records)
    fs.failing = False
    agent.reload()
    assert agent.nv_module.error is None and agent.nv_module.names() == ["hello"]


def test_the_heartbeat_beats_once_the_sentinel_is_back_without_waiting_for_the_poll(
    tmp_path: Path, make_agent  # noqa: F811
) -> None:
    share = tmp_path / "share"
    init_share(share, "student", fs=REAL_FS)
    agent = make_agent(share, ShareFS())
    assert not agent.share_ok  # the polling loop has not looked yet (after an outage: it is backing off)
    agent.heartbeat.beat()
    status = json.loads(ShareLayout(share).status_file(HOST).read_text())
    assert status["counter"] == 1


def test_the_heartbeat_writes_nothing_under_an_empty_mount_point(tmp_path: Path, make_agent) -> None:  # noqa: F811
    mount_point = tmp_path / "Z"
    mount_point.mkdir()
    agent = make_agent(mount_point, ShareFS())
    agent.heartbeat.beat()
    assert os.listdir(mount_point) == []
