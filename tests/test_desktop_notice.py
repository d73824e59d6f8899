"""The OS toast's command lines, run against stand-in notify-send / osascript / powershell executables.

No desktop is here (no notify-send, no macOS, no Windows), so each route runs
a stand-in executable on PATH that records what it was given: the tests
prove the text reaches the OS tool as data (arguments, or environment
variables for PowerShell), never as script, whatever it holds.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from envy.platform import desktop_notice

HOSTILE = "shot'010\"; $(rm -rf /) `x` </text><x>"

RECORDER = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["RECORD_TO"], "w") as f:
    json.dump({{"argv": sys.argv[1:], "title": os.environ.get("ENVY_TOAST_TITLE"),
               "text": os.environ.get("ENVY_TOAST_TEXT")}}, f)
"""


def _standin(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    exe = folder / name
    exe.write_text(RECORDER)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "record.json"
    monkeypatch.setenv("RECORD_TO", str(out))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return out


@pytest.mark.parametrize(("system", "tool"), [("linux", "notify-send"), ("darwin", "osascript"),
                                              ("windows", "powershell.exe")])
def test_standin_toast_gets_the_text_as_data_never_as_script(
        tmp_path: Path, record: Path, monkeypatch: pytest.MonkeyPatch, system: str, tool: str) -> None:
    _standin(tmp_path / "bin", tool)
    monkeypatch.setattr(desktop_notice, "os_name", lambda: system)
    monkeypatch.setenv("DISPLAY", ":0")
    assert desktop_notice.show_desktop_notice("Envy", HOSTILE)
    seen = json.loads(record.read_text())
    if system == "windows":
        assert (seen["title"], seen["text"]) == ("Envy", HOSTILE)
        assert seen["argv"][-1] == desktop_notice._WINDOWS_SCRIPT and HOSTILE not in " ".join(seen["argv"])
        assert "-NonInteractive" in seen["argv"] and "CreateTextNode($env:ENVY_TOAST_TEXT)" in seen["argv"][-1]
    else:
        assert seen["argv"][-2:] == ["Envy", HOSTILE], "title and text are the last two arguments, whole"
        if system == "darwin":
            assert all(HOSTILE not in a for a in seen["argv"][:-2]), "the script itself holds no text"


def test_no_desktop_session_or_no_tool_means_no_toast(tmp_path: Path, record: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(desktop_notice, "os_name", lambda: "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    _standin(tmp_path / "bin", "notify-send")
    assert not desktop_notice.show_desktop_notice("Envy", "done")  # an agent's machine with nobody logged in
    monkeypatch.setattr(desktop_notice, "os_name", lambda: "windows")
    assert not desktop_notice.show_desktop_notice("Envy", "done")  # no PowerShell on PATH
    assert not record.exists() and os.environ["PATH"] == str(tmp_path / "bin")
