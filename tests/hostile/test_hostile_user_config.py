"""A user's own config cannot unset farm policy; the submitter is the OS account (Must-hold 10).

A student can write ``users/<them>/config.yaml`` on the share and set ``$USER``
to anything: neither may change what the farm allows or who a job says
submitted it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import pytest

from envy.config import FARM_ONLY_KEYS, load_config
from envy.platform.host import account_name
from envy.share.fs import REAL_FS
from envy.share.layout import init_share
from envy_io.cli import main


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    init_share(root, "mallory", fs=REAL_FS)
    (root / "config.yaml").write_text(
        "policy: /admin/policy.yaml\nproject_roots: [/projects]\nrender_timeout_max: 3600\nworkers: 2\n")
    return root


def test_farm_keys_in_a_users_own_file_are_ignored_with_a_warning(
        share: Path, caplog: pytest.LogCaptureFixture) -> None:
    user_file = share / "users" / "mallory" / "config.yaml"
    user_file.write_text("policy: null\nproject_roots: [/]\nrender_timeout_max: 0\nsigned: false\nworkers: 3\n")
    with caplog.at_level(logging.WARNING, logger="envy.config"):
        cfg = load_config(share=str(share), user="mallory", env={}, config_file=None)
    assert cfg.policy == "/admin/policy.yaml" and cfg.project_roots == ("/projects",)
    assert cfg.render_timeout_max == 3600 and cfg.workers == 3  # her own settings still apply
    warned = [r.getMessage() for r in caplog.records]
    for key in ("policy", "project_roots", "render_timeout_max", "signed"):
        assert any(f"'{key}' is a farm setting" in w and str(user_file) in w for w in warned), key
    assert {"policy", "project_roots", "render_timeout_max", "render_stall_max"} <= FARM_ONLY_KEYS


def submit(share: Path, folder: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--share", str(share), "submit", str(folder), "--renderer", "povray", "--json", *args])
    return code, out.getvalue(), err.getvalue()


def test_under_strict_modes_the_submitter_is_the_os_account_not_user(
        share: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (share / "config.yaml").write_text("")
    folder = tmp_path / "shot"
    folder.mkdir()
    (folder / "shot.0001.pov").write_text("// a frame\n")
    for name in ("USER", "LOGNAME", "USERNAME"):
        monkeypatch.setenv(name, "the-teacher")
    code, out, err = submit(share, folder, "--timeout", "600", "--stall", "120")
    assert code == 0, err
    job = json.loads(out)
    assert job["created_by"] == account_name() != "the-teacher"
    assert (job["timeout"], job["stall"]) == (600, 120)


def test_a_bad_timeout_is_one_line_saying_what_is_allowed(share: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    folder.mkdir()
    (folder / "shot.0001.pov").write_text("// a frame\n")
    code, _, err = submit(share, folder, "--timeout", "-5")
    assert code == 2 and err.count("\n") == 1 and "--timeout" in err


def test_project_roots_must_be_absolute_folders(share: Path) -> None:
    (share / "config.yaml").write_text("project_roots: [projects]\n")
    with pytest.raises(ValueError, match="'project_roots' must list absolute folders") as raised:
        load_config(share=str(share), env={}, config_file=None)
    assert str(share / "config.yaml") in str(raised.value) and "\n" not in str(raised.value)
