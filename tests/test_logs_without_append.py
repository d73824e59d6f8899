"""Logs on the share are written without O_APPEND (issue 14: some SMB clients refuse
``O_WRONLY|O_APPEND`` with ENXIO and then drop the connection for seconds).

The test plays that client: every open asking for append mode fails with ENXIO,
and the agent's log, a render's log and a failure note must all still land.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
from pathlib import Path

import pytest

from envy.agent.child_log import ChildLog
from envy.logs import ResilientFileHandler
from envy.share.fs import ShareFS


@pytest.fixture
def smb_refusing_append(monkeypatch: pytest.MonkeyPatch) -> None:
    real_os_open, real_open = os.open, builtins.open

    def os_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & os.O_APPEND:
            raise OSError(errno.ENXIO, os.strerror(errno.ENXIO), path)
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if "a" in mode:
            raise OSError(errno.ENXIO, os.strerror(errno.ENXIO), file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)


def test_the_agent_log_is_written_and_rotated_without_append_mode(tmp_path: Path, smb_refusing_append: None) -> None:
    log_file = tmp_path / "logs" / "lab1-01" / "agent.log"
    handler = ResilientFileHandler(log_file, tmp_path / "local" / "agent-local.log", max_bytes=300, backups=2,
                                   create_parents=True)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("envy.test.noappend")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(40):
            logger.warning("line %02d", i)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert "line 39" in log_file.read_text()
    assert (log_file.parent / "agent.log.1").exists(), "no rotation"
    assert not (tmp_path / "local" / "agent-local.log").exists(), "fell back to the local log"


def test_a_render_log_and_its_failure_note_are_written_without_append_mode(
    tmp_path: Path, smb_refusing_append: None
) -> None:
    path = tmp_path / "shot.0001.lab1-01.1.log"
    child = ChildLog(path)
    child.write_note("started pid 1")
    child.write(b"Rendering line 1\n")
    child.close()
    ShareFS().append(path, b"\nENVY FAILED: renderer exited with code 1\n")
    text = path.read_text()
    assert "started pid 1" in text and "Rendering line 1" in text and text.endswith("code 1\n")
