"""The `envy` command: init, bad input gives one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from envy.cli import main


def test_init_creates_layout_user_folder_and_sentinel(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    share = tmp_path / "envy"
    assert main(["init", str(share), "--user", "ana"]) == 0
    for rel in ("ENVY_SHARE.json", "instructions.txt", "status", "logs", "jobs", "users/ana/Envy_Functions.py",
                "users/ana/IO_functions.py", "users/ana/config.yaml", "users/ana/start_envy_agent.bat"):
        assert (share / rel).exists(), rel
    assert not (share / "users" / "ana" / "__init__.py").exists()
    (share / "users" / "ana" / "Envy_Functions.py").write_text("# mine\n")
    assert main(["init", str(share), "--user", "ana"]) == 0  # again: safe, keeps the user's files
    assert (share / "users" / "ana" / "Envy_Functions.py").read_text() == "# mine\n"


def run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "envy", *args], capture_output=True, text=True, timeout=60, env=env)


def test_agent_without_share_is_one_line_exit_2() -> None:
    result = run("agent", "--host", "lab1-01")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no share given" in result.stderr


def test_bad_host_name_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run("agent", "--share", str(tmp_path), "--host", "lab 1")
    assert result.returncode == 2 and "host name" in result.stderr and result.stderr.strip().count("\n") == 0


def test_bad_setting_names_the_key(tmp_path: Path) -> None:
    result = run("agent", "--share", str(tmp_path), "--host", "lab1-01", "--set", "heartbeat=fast")
    assert result.returncode == 2 and "'heartbeat'" in result.stderr and "command line" in result.stderr


def test_second_agent_for_the_same_host_refuses(farm) -> None:  # type: ignore[no-untyped-def]
    first = farm.start_agent("lab1-01")
    farm.wait_heartbeat(first)
    second = farm.start_agent("lab1-01")
    assert second.wait_exit(30) == 2
    assert "already running" in second.output()
    assert first.alive()
